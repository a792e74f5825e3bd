"""Commits finished batches in Kafka transactions on a thread of their own.

A batch's transaction (produce its results, send its offsets, commit) is a
few broker round trips. Run on the worker's thread they would idle the model
between batches; here they run while the worker already infers the next
batch. At most one transaction is in flight, and the worker waits for it
before it hands over the next batch, so batches still commit in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, Message, Producer, TopicPartition

from inference_consumer.emitter import EventEmitter
from inference_consumer.inference import TaskOutcome
from inference_consumer.transactions import retry_retriable, stage

__all__ = ["BatchCommitter", "FinishedBatch", "next_offsets", "offset_of", "partition_of"]

log = logging.getLogger(__name__)
# Bound on one blocking transactional call; a retriable failure is tried again.
TXN_CALL_TIMEOUT_S = 10.0


@dataclass
class FinishedBatch:
    """A consumed batch with its outcomes, ready to be committed."""

    messages: list[Message]
    decoded: list[tuple[Message, dict[str, Any]]]
    outcomes: list[TaskOutcome]
    undecodable: list[tuple[Message, Exception]]
    group_metadata: Any = field(default=None)


class BatchCommitter:
    """One transactional producer and the single thread that drives it."""

    def __init__(
        self, producer: Producer, emitter: EventEmitter, keep_trying: Callable[[], bool]
    ) -> None:
        self.producer = producer
        self.emitter = emitter
        self._keep_trying = keep_trying
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transactions")
        self._in_flight: Future[bool] | None = None

    def init(self) -> None:
        """Fence a predecessor with the same transactional.id and abort its open
        transaction; retried while the broker is not reachable yet."""
        self._retry(lambda: self.producer.init_transactions(TXN_CALL_TIMEOUT_S), "init")

    def submit(self, batch: FinishedBatch) -> None:
        """Start committing ``batch``; call ``wait`` before the next ``submit``."""
        assert self._in_flight is None, "one transaction at a time"
        self._in_flight = self._thread.submit(self._commit, batch)

    def wait(self) -> bool | None:
        """Wait for the transaction in flight: True if committed, False if aborted
        (its batch must be consumed again), None if there was none. A fatal error
        (this producer was fenced) is raised."""
        in_flight, self._in_flight = self._in_flight, None
        return None if in_flight is None else in_flight.result()

    def drain(self) -> None:
        """Block until the transaction in flight has finished; ``wait`` still reports it."""
        if self._in_flight is not None:
            futures.wait([self._in_flight])

    def close(self) -> None:
        """Stop the thread (after the transaction in flight)."""
        self._thread.shutdown(wait=True)

    def _commit(self, batch: FinishedBatch) -> bool:
        try:
            self._transact(batch)
        except KafkaException as exc:
            error = exc.args[0]
            if not error.txn_requires_abort():
                log.error("transaction failed fatally", extra={"error": str(error)})
                raise
            log.warning(
                "transaction aborted; batch will be consumed again", extra={"error": str(error)}
            )
            retry_retriable(
                lambda: self.producer.abort_transaction(TXN_CALL_TIMEOUT_S), "abort", lambda: True
            )
            return False
        return True

    def _transact(self, batch: FinishedBatch) -> None:
        """Results, FAILED statuses, dead letters and the batch's offsets: one transaction."""
        self.producer.begin_transaction()
        with stage("produce"):
            for (message, _), outcome in zip(batch.decoded, batch.outcomes, strict=True):
                self.emitter.outcome(self.producer, outcome, message)
            for message, error in batch.undecodable:
                self.emitter.dead_letter(self.producer, message, type(error).__name__, str(error))
        with stage("commit"):
            offsets = next_offsets(batch.messages)
            self._retry(
                lambda: self.producer.send_offsets_to_transaction(
                    offsets, batch.group_metadata, TXN_CALL_TIMEOUT_S
                ),
                "send_offsets",
            )
            self._retry(lambda: self.producer.commit_transaction(TXN_CALL_TIMEOUT_S), "commit")

    def _retry(self, operation: Callable[[], None], name: str) -> None:
        retry_retriable(operation, name, self._keep_trying)


def partition_of(message: Message) -> tuple[str, int]:
    """A consumed message's (topic, partition)."""
    topic, partition = message.topic(), message.partition()
    assert topic is not None and partition is not None  # consumed messages have both
    return topic, partition


def offset_of(message: Message) -> int:
    """A consumed message's offset."""
    offset = message.offset()
    assert offset is not None
    return offset


def next_offsets(batch: list[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``batch``: one past its last message per partition."""
    last: dict[tuple[str, int], int] = {}
    for message in batch:
        last[partition_of(message)] = offset_of(message)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
