"""The worker's poll loop: consume a batch, infer, then publish results and
commit the batch's offsets in one Kafka transaction (KIP-447 fencing)."""

from __future__ import annotations

import faulthandler
import logging
import signal
import time
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client import start_http_server

from asyncarch.backoff import Backoff
from asyncarch.blobstore import BlobStore, open_store
from asyncarch.config import KafkaSettings
from asyncarch.logs import configure_logging
from inference_consumer.batcher import ConsumerFailed, collect_batch, is_fatal, linger_after
from inference_consumer.cancellations import CancellationWatcher
from inference_consumer.committer import (
    TXN_CALL_TIMEOUT_S,
    BatchCommitter,
    FinishedBatch,
    Outcome,
    offset_of,
    partition_of,
    transactional_config,
)
from inference_consumer.config import WorkerSettings
from inference_consumer.emitter import EventEmitter
from inference_consumer.heap import heap_trimmer
from inference_consumer.inference import RetryPolicy, TaskOutcome, run_with_retries
from inference_consumer.metrics import (
    BATCH_SIZE,
    INFERENCE_SECONDS,
    REBALANCES,
    TASKS,
    record_consumer_lag,
)
from inference_consumer.model import SentenceEncoder
from inference_consumer.transactions import stage
from schemas.codec import codec_for
from schemas.exceptions import EventDecodeError, SchemaRegistryError
from schemas.topics import TopicSettings

__all__ = ["InferenceWorker"]

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.5
# Waits between tries while the schema registry is unavailable; far below
# max.poll.interval.ms, so a waiting worker stays in its group.
REGISTRY_RETRY_INITIAL_S = 0.5
REGISTRY_RETRY_MAX_S = 5.0


class InferenceWorker:
    """One member of the workers' consumer group."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        settings: WorkerSettings,
        encoder: SentenceEncoder,
        store: BlobStore | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.encoder = encoder
        self.emitter = EventEmitter(topics, settings.worker_id, encoder.identity)
        self._consumer_settings = kafka.librdkafka(**self._consumer_config())
        self.consumer = Consumer(self._consumer_settings)
        self.status_producer = Producer(kafka.producer(**{"client.id": settings.worker_id}))
        transactional = transactional_config(settings)
        self.committer = BatchCommitter(
            lambda: Producer(kafka.producer(**transactional)),
            self.emitter,
            lambda: self._running,
            transaction_timeout_s=settings.transaction_timeout_ms / 1000,
        )
        self._committing: FinishedBatch | None = None
        self._linger_s = 0.0
        self.store = store
        self.cancellations = CancellationWatcher(kafka, topics.cancellations)
        self._owned: set[int] = set()
        self._progress_sent: dict[str, float] = {}
        self.retry_policy = RetryPolicy(settings.max_attempts, settings.retry_backoff_ms / 1000)
        self._revoked: set[tuple[str, int]] = set()
        self._registry_backoff = Backoff(REGISTRY_RETRY_INITIAL_S, REGISTRY_RETRY_MAX_S)
        self._trim_heap = heap_trimmer() if settings.trim_heap else None
        self._running = True

    def _consumer_config(self) -> dict[str, Any]:
        config = {
            "group.id": self.settings.group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": self.settings.max_poll_interval_ms,
            "session.timeout.ms": self.settings.session_timeout_ms,
            "heartbeat.interval.ms": self.settings.heartbeat_interval_ms,
            "client.id": self.settings.worker_id,
            "statistics.interval.ms": 5000,
            "stats_cb": record_consumer_lag,
        }
        if self.settings.group_instance_id:
            config["group.instance.id"] = self.settings.group_instance_id
        return config

    def stop(self, *_: object) -> None:
        """Finish the current batch, then leave the group."""
        self._running = False

    def run(self) -> None:
        """Consume until stopped; always closes the consumer and flushes producers."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self._learn_schema_ids()
        self.committer.init()
        self._subscribe()
        log.info(
            "worker consuming",
            extra={"topic": self.topics.requests, "group": self.settings.group_id},
        )
        try:
            self._loop()
        finally:
            self._settle()
            self.committer.close()
            self.status_producer.flush(10)
            self.consumer.close()
            self.cancellations.close()
            log.info("worker stopped")

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            [self.topics.requests],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

    def _replace_consumer(self, reason: ConsumerFailed) -> None:
        """A fresh consumer in place of one that failed fatally; it resumes from the
        group's committed offsets once the transaction in flight has finished."""
        log.error("consumer failed; replacing it", extra={"error": str(reason)})
        committing, self._committing = self._committing, None
        if self.committer.wait() is Outcome.COMMITTED and committing is not None:
            _record(committing)  # else the new consumer starts before it anyway
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as exc:
            log.warning("closing the failed consumer", extra={"error": str(exc)})
        self._owned.clear()
        self.consumer = Consumer(self._consumer_settings)
        self._subscribe()

    def _loop(self) -> None:
        """Infer batch n+1 while batch n's transaction commits on the committer's thread."""
        while self._running:
            try:
                self._step()
            except ConsumerFailed as exc:
                self._replace_consumer(exc)

    def _step(self) -> None:
        """Consume a batch, infer it, settle the transaction in flight, submit this one."""
        self._revoked.clear()
        batch = collect_batch(
            self.consumer,
            self.settings.max_batch,
            self._linger_s,
            self.settings.poll_timeout_ms / 1000,
            self.settings.linger_gap_ms / 1000,
        )
        self._linger_s = linger_after(batch, self.settings.max_wait_ms / 1000)
        batch = self._without_revoked(batch)
        try:
            finished = self.infer(batch) if batch else None
        except SchemaRegistryError as exc:
            self._wait_for_registry(exc, batch)
            return
        self._registry_backoff.succeeded()
        if not self._settle(finished) or finished is None:
            return
        finished.group_metadata = self.consumer.consumer_group_metadata()
        self.committer.submit(finished)
        self._committing = finished

    def _learn_schema_ids(self) -> None:
        """With a registry, the ids of what this worker writes, before it takes any
        work: then no status, result or dead letter needs the registry later, and a
        registry outage cannot stop a transaction halfway."""
        while self._running:
            try:
                self.emitter.learn_schema_ids()
            except SchemaRegistryError as exc:
                self._sleep(self._registry_backoff.next_wait_s(), exc)
            else:
                self._registry_backoff.succeeded()
                return

    def _wait_for_registry(self, error: SchemaRegistryError, batch: list[Message]) -> None:
        """The registry is unavailable: the batch is not at fault. Consume it again
        after a while (its offsets are not committed), never dead-letter it."""
        self._rewind(batch)
        self._sleep(self._registry_backoff.next_wait_s(), error)

    def _sleep(self, wait_s: float, error: SchemaRegistryError) -> None:
        log.warning(
            "schema registry unavailable; trying again",
            extra={"error": str(error), "retry_in_s": wait_s},
        )
        deadline = time.monotonic() + wait_s
        while self._running and time.monotonic() < deadline:
            time.sleep(0.1)

    def infer(self, batch: list[Message]) -> FinishedBatch:
        """Decode a batch, drop cancelled tasks and run the rest through the model."""
        with stage("decode"):
            decoded, undecodable = self._decode(batch)
        with stage("cancel_check"):
            decoded = self._without_cancelled(decoded)
        self._progress_sent.clear()
        outcomes = self._infer(decoded)
        if self._trim_heap is not None:
            with stage("trim_heap"):
                self._trim_heap()
        return FinishedBatch(batch, decoded, outcomes, undecodable)

    def _settle(self, next_batch: FinishedBatch | None = None) -> bool:
        """Wait for the transaction in flight. If it aborted, rewind to its batch and
        drop ``next_batch`` too (both are consumed again); False then."""
        committing, self._committing = self._committing, None
        outcome = self.committer.wait()
        if committing is None or outcome is None:
            return True
        if outcome is Outcome.COMMITTED:
            _record(committing)
            return True
        messages = committing.messages + (next_batch.messages if next_batch else [])
        if outcome is Outcome.ABORTED:
            self._rewind(messages)
        else:
            self._rewind_to_committed(messages)
        return False

    def _without_cancelled(
        self, decoded: list[tuple[Message, dict[str, Any]]]
    ) -> list[tuple[Message, dict[str, Any]]]:
        """Drop tasks cancelled before this batch; their offsets are still committed."""
        cancelled = self.cancellations.cancelled_among([r["task_id"] for _, r in decoded])
        for _, request in decoded:
            if request["task_id"] in cancelled:
                TASKS.labels(outcome="cancelled").inc()
                log.info("cancelled task skipped", extra={"task_id": request["task_id"]})
        return [(m, r) for m, r in decoded if r["task_id"] not in cancelled]

    def _infer(self, decoded: list[tuple[Message, dict[str, Any]]]) -> list[TaskOutcome]:
        """Publish RUNNING, then run the batch with retries."""
        for message, request in decoded:
            self.emitter.status(self.status_producer, request, "RUNNING", message)
        self.status_producer.poll(0)
        with INFERENCE_SECONDS.time(), stage("forward"):
            return run_with_retries(
                [request for _, request in decoded],
                self.encoder.encode,
                self.retry_policy,
                lambda n, exc: self._retrying(decoded, n, exc),
                self.store,
                self._progress,
            )

    def _progress(self, request: dict[str, Any], fraction: float) -> None:
        """Publish a long task's progress, at most every PROGRESS_INTERVAL_S."""
        now = time.monotonic()
        if now - self._progress_sent.get(request["task_id"], 0.0) < PROGRESS_INTERVAL_S:
            return
        self._progress_sent[request["task_id"]] = now
        self.emitter.status(self.status_producer, request, "RUNNING", progress=fraction)
        self.status_producer.poll(0)

    def _retrying(
        self, decoded: list[tuple[Message, dict[str, Any]]], attempt: int, error: Exception
    ) -> None:
        """Tell clients the batch failed and is tried again, then that it runs again."""
        reason = {"type": type(error).__name__, "message": str(error)[:1000]}
        for message, request in decoded:
            self.emitter.status(self.status_producer, request, "RETRYING", message, reason, attempt)
            self.emitter.status(
                self.status_producer, request, "RUNNING", message, None, attempt + 1
            )
        self.status_producer.poll(0)

    def _decode(
        self, batch: list[Message]
    ) -> tuple[list[tuple[Message, dict[str, Any]]], list[tuple[Message, Exception]]]:
        codec = codec_for("TaskRequest")
        decoded: list[tuple[Message, dict[str, Any]]] = []
        undecodable: list[tuple[Message, Exception]] = []
        for message in batch:
            try:
                decoded.append((message, codec.decode(message.value())))
            except EventDecodeError as exc:
                log.error(
                    "undecodable request sent to dead letters",
                    extra={
                        "partition": message.partition(),
                        "offset": message.offset(),
                        "error": str(exc),
                    },
                )
                undecodable.append((message, exc))
        return decoded, undecodable

    def _first_offsets(self, batch: list[Message]) -> dict[tuple[str, int], int]:
        """The first offset of each partition in ``batch`` that is still this worker's."""
        first: dict[tuple[str, int], int] = {}
        for message in batch:
            first.setdefault(partition_of(message), offset_of(message))
        return {tp: offset for tp, offset in first.items() if tp not in self._revoked}

    def _rewind(self, batch: list[Message]) -> None:
        for (topic, partition), offset in self._first_offsets(batch).items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    def _without_revoked(self, batch: list[Message]) -> list[Message]:
        """The batch without the partitions revoked while it was collected. One that was
        assigned again meanwhile (a rebalance after a broker outage revokes and assigns
        in one poll) goes back to its committed offset: its dropped messages, from
        before or after the assignment, are consumed again, not skipped."""
        again = {
            partition_of(m): OFFSET_BEGINNING  # nothing committed: the reset policy's start
            for m in batch
            if partition_of(m) in self._revoked and m.partition() in self._owned
        }
        if again:
            self._seek_committed(again)
        return [m for m in batch if partition_of(m) not in self._revoked]

    def _rewind_to_committed(self, batch: list[Message]) -> None:
        """After a transaction whose outcome is unknown: consume again from the
        group's committed offsets (past the batch if that transaction committed)."""
        self._seek_committed(self._first_offsets(batch))

    def _seek_committed(self, fallback: dict[tuple[str, int], int]) -> None:
        """Seek these partitions to the group's committed offsets, or to ``fallback``
        where none is committed."""
        partitions = [TopicPartition(t, p) for t, p in fallback]
        committed = self._read_committed_offsets(partitions)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else fallback[(tp.topic, tp.partition)]
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        log.warning("rewound to the committed offsets", extra={"partitions": len(committed)})

    def _read_committed_offsets(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        delay = 0.1
        while True:
            try:
                return list(self.consumer.committed(partitions, timeout=TXN_CALL_TIMEOUT_S))
            except KafkaException as exc:
                if is_fatal(exc.args[0]):
                    raise ConsumerFailed(str(exc)) from exc
                if not self._running:
                    raise
                log.warning("committed offsets unavailable; retrying", extra={"error": str(exc)})
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        REBALANCES.labels(event="assigned").inc()
        self._owned |= {tp.partition for tp in partitions}
        self.cancellations.follow(self._owned)
        log.info("partitions assigned", extra={"partitions": [tp.partition for tp in partitions]})

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        REBALANCES.labels(event="revoked").inc()
        self._owned -= {tp.partition for tp in partitions}
        self.cancellations.follow(self._owned)
        self._revoked.update((tp.topic, tp.partition) for tp in partitions)
        # Its offsets may be in the transaction in flight: let that finish before the
        # partitions move, so the next owner starts where this worker stopped.
        self.committer.drain()
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in partitions]})


def _record(batch: FinishedBatch) -> None:
    BATCH_SIZE.observe(len(batch.messages))
    outcomes = batch.outcomes
    failed = sum(outcome.output is None for outcome in outcomes)
    TASKS.labels(outcome="success").inc(len(outcomes) - failed)
    TASKS.labels(outcome="failed").inc(failed)
    TASKS.labels(outcome="dead_letter").inc(len(batch.undecodable) + failed)
    log.info(
        "batch committed",
        extra={
            "size": len(batch.messages),
            "failed": failed,
            "undecodable": len(batch.undecodable),
            "infer_ms": round(outcomes[0].duration_ms, 1) if outcomes else 0.0,
        },
    )


def main() -> None:
    """Entry point of ``asyncarch worker``; ``kill -USR1 <pid>`` prints every thread's stack."""
    configure_logging("inference_consumer")
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = WorkerSettings()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.metrics_host)
    encoder = SentenceEncoder(
        settings.resolved_model_dir(), settings.model_name, settings.device, settings.torch_threads
    )
    InferenceWorker(KafkaSettings(), TopicSettings(), settings, encoder, open_store()).run()
