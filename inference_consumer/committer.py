"""Commits finished batches in Kafka transactions on a thread of their own.

A batch's transaction (produce its results, send its offsets, commit) is a
few broker round trips. Run on the worker's thread they would idle the model
between batches; here they run while the worker already infers the next
batch. At most one transaction is in flight, and the worker waits for it
before it hands over the next batch, so batches still commit in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from confluent_kafka import KafkaException, Message, Producer, TopicPartition

from inference_consumer.config import WorkerSettings
from inference_consumer.emitter import EventEmitter
from inference_consumer.inference import TaskOutcome
from inference_consumer.transactions import (
    TransactionStuck,
    call_with_deadline,
    retry_retriable,
    stage,
)

__all__ = [
    "BatchCommitter",
    "FinishedBatch",
    "Outcome",
    "next_offsets",
    "offset_of",
    "partition_of",
    "transactional_config",
]

log = logging.getLogger(__name__)
# Bound on one blocking transactional call; a retriable failure is tried again.
TXN_CALL_TIMEOUT_S = 10.0
# librdkafka does not enforce send_offsets_to_transaction's timeout: it waits for
# the group coordinator without bound (confluentinc/librdkafka#5456, #5511), and
# after a broker restart it was seen to wait forever. Past this the producer is
# taken as stuck.
SEND_OFFSETS_DEADLINE_S = TXN_CALL_TIMEOUT_S + 5.0


def transactional_config(settings: WorkerSettings) -> dict[str, Any]:
    """librdkafka settings of a worker's transactional producer.

    A restarted worker with the same worker_id fences and aborts its
    predecessor's open transaction at once; a new id relies on KIP-447 group
    fencing, and on transaction.timeout.ms for the abort.
    """
    return {
        "transactional.id": f"{settings.group_id}-{settings.worker_id}",
        "transaction.timeout.ms": settings.transaction_timeout_ms,
        "client.id": settings.worker_id,
        # A transaction that starts right after the previous commit finds the
        # coordinator still writing its markers (CONCURRENT_TRANSACTIONS) and is
        # retried after retry.backoff.ms: librdkafka's 100 ms default cost every
        # back-to-back batch ~100 ms; 10 ms (growing exponentially) does not.
        "retry.backoff.ms": 10,
        # With every broker down, librdkafka (since 2.10) re-bootstraps and
        # decommissions the brokers it knew but keeps one as the cached group
        # coordinator: the first send_offsets_to_transaction after the broker
        # returns then waits for it forever (confluentinc/librdkafka#5511).
        # Without re-bootstrap the known brokers just reconnect; a producer that
        # cannot is replaced anyway (SEND_OFFSETS_DEADLINE_S).
        "metadata.recovery.strategy": "none",
    }


class Outcome(Enum):
    """What became of a batch's transaction."""

    COMMITTED = "committed"
    ABORTED = "aborted"  # consume the batch again from its first offsets
    UNKNOWN = "unknown"  # the producer was replaced: consume again from the committed offsets


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
        self,
        new_producer: Callable[[], Producer],
        emitter: EventEmitter,
        keep_trying: Callable[[], bool],
        transaction_timeout_s: float,
        send_offsets_deadline_s: float = SEND_OFFSETS_DEADLINE_S,
    ) -> None:
        self._new_producer = new_producer
        self.producer = new_producer()
        self.emitter = emitter
        self._keep_trying = keep_trying
        self._transaction_timeout_s = transaction_timeout_s
        # By then the coordinator has aborted an unfinished transaction anyway.
        self._stuck_after_s = transaction_timeout_s + TXN_CALL_TIMEOUT_S
        self._send_offsets_deadline_s = send_offsets_deadline_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transactions")
        self._in_flight: Future[Outcome] | None = None

    def init(self) -> None:
        """Fence a predecessor with the same transactional.id and abort its open
        transaction; retried while the broker is not reachable yet, with a new
        producer whenever one gets stuck."""
        while True:
            try:
                self._retry(lambda: self.producer.init_transactions(TXN_CALL_TIMEOUT_S), "init")
                return
            except TransactionStuck as exc:
                log.warning(
                    "init_transactions stuck; trying a new producer", extra={"error": str(exc)}
                )
                self.producer = self._new_producer()

    def submit(self, batch: FinishedBatch) -> None:
        """Start committing ``batch``; call ``wait`` before the next ``submit``."""
        assert self._in_flight is None, "one transaction at a time"
        self._in_flight = self._thread.submit(self._commit, batch)

    def wait(self) -> Outcome | None:
        """Wait for the transaction in flight; None if there was none. A fatal
        error (this producer was fenced) is raised."""
        in_flight, self._in_flight = self._in_flight, None
        return None if in_flight is None else in_flight.result()

    def drain(self) -> None:
        """Block until the transaction in flight has finished; ``wait`` still reports it."""
        if self._in_flight is not None:
            futures.wait([self._in_flight])

    def close(self) -> None:
        """Stop the thread (after the transaction in flight)."""
        self._thread.shutdown(wait=True)

    def _commit(self, batch: FinishedBatch) -> Outcome:
        started = time.monotonic()
        try:
            self._transact(batch)
        except TransactionStuck as exc:
            return self._start_over("transaction stuck", exc)
        except KafkaException as exc:
            if not exc.args[0].txn_requires_abort():
                return self._after_fatal(exc, started)
            log.warning(
                "transaction aborted; batch will be consumed again", extra={"error": str(exc)}
            )
            try:
                self._retry(lambda: self.producer.abort_transaction(TXN_CALL_TIMEOUT_S), "abort")
            except TransactionStuck as stuck:
                return self._start_over("abort stuck", stuck)
            except KafkaException as fatal:
                return self._after_fatal(fatal, started)
            return Outcome.ABORTED
        return Outcome.COMMITTED

    def _after_fatal(self, exc: KafkaException, started: float) -> Outcome:
        """A fatal error (fenced). If the transaction had outlived its timeout (the
        broker was away), the coordinator aborted it and bumped the epoch itself:
        start over with a new producer. Otherwise a newer instance holds this
        transactional.id and this worker must stop: the error is raised."""
        if time.monotonic() - started > self._transaction_timeout_s:
            return self._start_over("fenced after the transaction timed out", exc)
        log.error("transaction failed fatally", extra={"error": str(exc)})
        raise exc

    def _start_over(self, why: str, exc: Exception) -> Outcome:
        log.warning(f"{why}; replacing the producer", extra={"error": str(exc)})
        self._replace_producer()
        return Outcome.UNKNOWN

    def _replace_producer(self) -> None:
        """A new producer with the same transactional.id: its init fences the old one
        and completes or aborts the old one's transaction, whichever it had reached.
        The old one may still be blocked in a call on another thread: it is only told
        to drop its queued messages, without waiting."""
        self.producer.purge(blocking=False)
        self.producer = self._new_producer()
        self.init()

    def _transact(self, batch: FinishedBatch) -> None:
        """Results, FAILED statuses, dead letters and the batch's offsets: one transaction."""
        producer = self.producer
        producer.begin_transaction()
        with stage("produce"):
            for (message, _), outcome in zip(batch.decoded, batch.outcomes, strict=True):
                self.emitter.outcome(producer, outcome, message)
            for message, error in batch.undecodable:
                self.emitter.dead_letter(producer, message, type(error).__name__, str(error))
        with stage("commit"):
            offsets = next_offsets(batch.messages)
            self._retry(
                lambda: self._send_offsets(producer, offsets, batch.group_metadata),
                "send_offsets",
            )
            self._retry(lambda: producer.commit_transaction(TXN_CALL_TIMEOUT_S), "commit")

    def _send_offsets(
        self, producer: Producer, offsets: list[TopicPartition], group_metadata: Any
    ) -> None:
        """The batch's offsets into the transaction, or TransactionStuck once the call
        outlives its deadline (it stays blocked on a thread of its own)."""
        call_with_deadline(
            lambda: producer.send_offsets_to_transaction(
                offsets, group_metadata, TXN_CALL_TIMEOUT_S
            ),
            "send_offsets",
            self._send_offsets_deadline_s,
        )

    def _retry(self, operation: Callable[[], None], name: str) -> None:
        retry_retriable(operation, name, self._keep_trying, give_up_after_s=self._stuck_after_s)


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
