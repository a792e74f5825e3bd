"""Which tasks were cancelled, read from the cancellations topic before each batch.

The cancellations topic is co-partitioned with the requests topic, so a
worker reads only the partitions it owns on the requests topic. Before each
batch it catches up to the partitions' current high watermarks: a cancel the
API had acknowledged before the batch started is always seen, so a task
cancelled while PENDING never runs.
"""

from __future__ import annotations

import logging
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for
from schemas.exceptions import EventDecodeError

__all__ = ["CancellationWatcher"]

log = logging.getLogger(__name__)


class CancellationWatcher:
    """Keeps the set of cancelled task ids for the partitions this worker owns."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self.cancelled: set[str] = set()
        self._consumer = Consumer(
            kafka.librdkafka(
                **{
                    "group.id": f"cancellation-reader-{uuid.uuid4().hex}",
                    "enable.auto.commit": False,
                    "isolation.level": "read_committed",
                }
            )
        )
        self._partitions: set[int] = set()

    def follow(self, partitions: set[int]) -> None:
        """Read these partitions (from their start); stop reading the others."""
        if partitions == self._partitions:
            return
        self._partitions = set(partitions)
        self._consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in sorted(partitions)]
        )

    def catch_up(self, timeout_s: float = 5.0) -> set[str]:
        """Consume up to each partition's high watermark now; returns the cancelled ids."""
        targets = {
            p: self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), timeout=timeout_s, cached=False
            )
            for p in self._partitions
        }
        pending = {p for p, (low, high) in targets.items() if self._position(p, low) < high}
        while pending:
            messages = self._consumer.consume(500, timeout=timeout_s)
            if not messages:
                log.warning("cancellations not caught up", extra={"partitions": sorted(pending)})
                break
            for message in messages:
                if not message.error():
                    self._remember(message.value())
            pending = {p for p in pending if self._position(p, targets[p][0]) < targets[p][1]}
        return self.cancelled

    def close(self) -> None:
        """Close the reader."""
        self._consumer.close()

    def _position(self, partition: int, low: int) -> int:
        """Next offset to read; before the first fetch, the partition's first offset."""
        [tp] = self._consumer.position([TopicPartition(self.topic, partition)])
        return max(tp.offset, low)

    def _remember(self, value: bytes | None) -> None:
        try:
            self.cancelled.add(codec_for("TaskStatus").decode(value)["task_id"])
        except EventDecodeError as exc:
            log.error("undecodable cancellation skipped", extra={"error": str(exc)})
