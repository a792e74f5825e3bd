"""Which tasks were cancelled, read continuously from the cancellations topic.

The cancellations topic is co-partitioned with the requests topic, so a
worker reads only the partitions it owns on the requests topic. A background
thread keeps reading them, so checking a batch costs no broker round trip: it
is a set lookup.

- After each assignment the reader asks the broker once for the partitions'
  end offsets, and the first batch waits until it has read up to them: a
  cancel written before the worker took the partition is always applied.
- Before every other batch the worker waits, briefly and without asking the
  broker, until the reader has consumed up to the high watermarks of its last
  fetch responses. A cancel that reached the broker in the last few
  milliseconds may miss the batch; its late result is harmless (CANCELLED is
  final in the table).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for
from schemas.exceptions import EventDecodeError, SchemaRegistryError

__all__ = ["CancellationWatcher"]

log = logging.getLogger(__name__)
ERROR_LOG_INTERVAL_S = 10.0
REGISTRY_RETRY_S = 2.0


class CancellationWatcher:
    """Keeps the set of cancelled task ids for the partitions this worker owns."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        poll_timeout_s: float = 0.05,
        sync_timeout_s: float = 30.0,
    ) -> None:
        self.topic = topic
        self._poll_timeout_s = poll_timeout_s
        self._sync_timeout_s = sync_timeout_s
        self._consumer = Consumer(
            kafka.librdkafka(
                **{
                    "group.id": f"cancellation-reader-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                    # An empty fetch waits this long; one returns at once when a cancel
                    # arrives, so this bounds only idle polling (10/s per worker at 100 ms).
                    "fetch.wait.max.ms": 500,
                }
            )
        )
        self._cancelled: set[str] = set()
        self._partitions: set[int] = set()
        self._wanted: set[int] | None = None
        self._targets: dict[int, tuple[int, int]] | None = {}
        self._caught_up = threading.Condition()
        self._is_caught_up = True
        self._synced = True
        self._stopping = threading.Event()
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._run, name="cancellations", daemon=True)
        self._thread.start()

    def follow(self, partitions: set[int]) -> None:
        """Read these partitions (from their start); stop reading the others."""
        with self._caught_up:
            if partitions != self._partitions:
                self._wanted = set(partitions)
                self._is_caught_up = self._synced = False

    def cancelled_among(self, task_ids: list[str], wait_s: float = 0.1) -> set[str]:
        """Which of ``task_ids`` are cancelled; waits up to ``wait_s`` for the reader to
        consume what it has already fetched (no broker round trip)."""
        with self._caught_up:
            if not self._caught_up.wait_for(lambda: self._synced, timeout=self._sync_timeout_s):
                log.warning("cancellations not read up to their end after an assignment")
            self._caught_up.wait_for(lambda: self._is_caught_up, timeout=wait_s)
            return {task_id for task_id in task_ids if task_id in self._cancelled}

    def close(self) -> None:
        """Stop the reader and close its consumer."""
        self._stopping.set()
        self._thread.join(timeout=5)
        self._consumer.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._reassign()
                self._read()
            except KafkaException as exc:  # transient: the broker is away or moving
                self._log_error(str(exc))
                time.sleep(0.5)
            except SchemaRegistryError as exc:  # transient: read them all again later
                self._log_error(str(exc))
                self._read_again_from_start()
                time.sleep(REGISTRY_RETRY_S)

    def _read_again_from_start(self) -> None:
        """The messages of the last fetch are consumed but not all read: start over."""
        with self._caught_up:
            if self._wanted is None:
                self._wanted = set(self._partitions)
                self._is_caught_up = False

    def _reassign(self) -> None:
        with self._caught_up:
            wanted, self._wanted = self._wanted, None
        if wanted is None:
            return
        self._consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(wanted)]
        )
        self._partitions = wanted
        self._targets = None

    def _read(self) -> None:
        if self._targets is None:
            self._targets = self._end_offsets()
        messages = self._consumer.consume(500, timeout=self._poll_timeout_s)
        ids = []
        for message in messages:
            if message.error():
                self._log_error(str(message.error()))
            elif (task_id := _task_id(message.value())) is not None:
                ids.append(task_id)
        synced = self._synced or self._reached(self._targets)
        caught_up = synced and self._at_fetched_end()
        with self._caught_up:
            self._cancelled.update(ids)
            if self._wanted is None:
                self._synced, self._is_caught_up = synced, caught_up
                self._caught_up.notify_all()

    def _end_offsets(self) -> dict[int, tuple[int, int]]:
        """The followed partitions' (first, end) offsets, asked of the broker once per
        assignment."""
        return {
            p: self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=5, cached=False
            )
            for p in self._partitions
        }

    def _reached(self, targets: dict[int, tuple[int, int]]) -> bool:
        """Whether every followed partition is read up to its end in ``targets``."""
        return all(max(self._position(p), low) >= end for p, (low, end) in targets.items())

    def _at_fetched_end(self) -> bool:
        """Whether every followed partition is read up to the high watermark of its
        last fetch response (cached locally: no request to the broker)."""
        for partition in self._partitions:
            tp = TopicPartition(self.topic, partition)
            low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high < 0:
                return False  # nothing fetched yet for this partition
            if max(self._position(partition), low) < high:
                return False
        return True

    def _position(self, partition: int) -> int:
        [position] = self._consumer.position([TopicPartition(self.topic, partition)])
        return int(position.offset)

    def _log_error(self, error: str) -> None:
        now = time.monotonic()
        if now - self._last_error_log > ERROR_LOG_INTERVAL_S:
            self._last_error_log = now
            log.warning("cancellations reader: %s", error, extra={"error": error})


def _task_id(value: bytes | None) -> str | None:
    try:
        return str(codec_for("TaskStatus").decode(value)["task_id"])
    except EventDecodeError as exc:
        log.error("undecodable cancellation skipped", extra={"error": str(exc)})
        return None
