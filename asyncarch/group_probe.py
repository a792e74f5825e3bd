"""How far a consumer group has read, asked from outside the group.

Three places ask: the API's backpressure (requests the workers have not
consumed), ``/monitor`` (each group's lag per partition) and the processor's
read-your-writes check (has its table applied what the broker holds). They
share the question's two subtleties:

- a group without a committed offset on a partition resumes from the
  partition's start (its consumers reset to ``earliest``);
- a topic written in transactions (``TopicSettings.transactional``) ends with a
  commit marker that takes an offset but that no consumer sees, so a reader
  that has everything is one offset short of the end there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from asyncarch.config import KafkaSettings

__all__ = ["GroupProbe", "PartitionProgress"]


@dataclass(frozen=True)
class PartitionProgress:
    """One partition's offsets as a group sees them."""

    topic: str
    partition: int
    start: int  # low watermark
    end: int  # high watermark
    committed: int | None  # the group's committed offset; None when it has none

    @property
    def position(self) -> int:
        """Where the group resumes reading."""
        return self.committed if self.committed is not None else self.start

    def lag(self, transactional: Iterable[str] = (), read_to: int = -1) -> int:
        """Offsets not yet consumed by the group, or by a reader that got to ``read_to``
        (exclusive) ahead of the group's commit; a trailing commit marker does not count."""
        slack = 1 if self.topic in transactional else 0
        return max(self.end - slack - max(self.position, read_to), 0)


class GroupProbe:
    """Reads a group's committed offsets and the partitions' watermarks.

    A consumer that names the group but never subscribes: it never joins the
    group, so asking changes nothing. It never polls either, so librdkafka
    would print its connection errors straight to stderr (ten lines a second
    while the broker is down): only critical ones are kept, and a failed
    query raises KafkaException instead.
    """

    def __init__(self, kafka: KafkaSettings, group: str, timeout_s: float = 5.0) -> None:
        self.group, self.timeout_s = group, timeout_s
        self._consumer = Consumer(
            kafka.librdkafka(**{"group.id": group, "enable.auto.commit": False, "log_level": 2})
        )

    def partitions(self, topic: str) -> list[tuple[str, int]]:
        """Every (topic, partition) of ``topic``."""
        metadata = self._consumer.list_topics(topic, timeout=self.timeout_s).topics[topic]
        return [(topic, partition) for partition in sorted(metadata.partitions)]

    def progress(self, partitions: Iterable[tuple[str, int]]) -> list[PartitionProgress]:
        """The group's progress on each of ``partitions``; raises KafkaException."""
        wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
        rows = []
        for tp in self._consumer.committed(wanted, timeout=self.timeout_s):
            start, end = self._consumer.get_watermark_offsets(
                tp, timeout=self.timeout_s, cached=False
            )
            committed = tp.offset if tp.offset >= 0 else None
            rows.append(PartitionProgress(tp.topic, tp.partition, start, end, committed))
        return rows

    def close(self) -> None:
        """Close the consumer (it never joined, so nothing leaves the group)."""
        self._consumer.close()
