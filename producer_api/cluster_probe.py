"""What the monitor reads from Kafka: topics, end offsets, consumer-group lag, dead letters.

Every call blocks (librdkafka) and is bounded by ``timeout_s``; the monitor runs
them in a thread, one snapshot at a time. It asks every group at once through
the admin API, and counts lag as the API's backpressure and the processor's
read-your-writes check do (``asyncarch.group_probe.PartitionProgress``): from the
partition's start when a group has committed nothing, and without the commit
marker that ends a transactional topic, so a caught-up group shows 0.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from asyncarch.config import KafkaSettings
from asyncarch.group_probe import PartitionProgress
from producer_api.dead_letter_tail import DeadLetterTail
from schemas.topics import TopicSettings

__all__ = ["ClusterProbe", "GroupWatch"]


@dataclass(frozen=True)
class GroupWatch:
    """A consumer group the monitor follows, and the topics its members read."""

    role: str
    group: str
    topics: tuple[str, ...]


class ClusterProbe:
    """Reads one snapshot of the pipeline's topics and groups from the cluster."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        groups: tuple[GroupWatch, ...],
        timeout_s: float = 2.0,
        dead_letters: int = 20,
    ) -> None:
        self.topics, self.groups, self.timeout_s = topics, groups, timeout_s
        self._kafka, self._dead_letter_count = kafka, dead_letters
        self._clients: tuple[AdminClient, DeadLetterTail] | None = None
        self._lock = threading.Lock()

    @property
    def _admin(self) -> AdminClient:
        return self._open()[0]

    def _open(self) -> tuple[AdminClient, DeadLetterTail]:
        """The clients, made on first use: an API nobody monitors opens no connection."""
        if self._clients is None:
            # Refused connections are expected during an outage: a failed call says so.
            admin = AdminClient(self._kafka.librdkafka(log_level=2))
            tail = DeadLetterTail(
                self._kafka, self.topics.dead_letters, self._dead_letter_count, self.timeout_s
            )
            self._clients = admin, tail
        return self._clients

    def snapshot(self) -> dict[str, Any]:
        """Topics with per-partition offsets, groups with per-partition lag, recent dead
        letters; raises KafkaException when the cluster does not answer in time."""
        with self._lock:
            partitions = self._partitions()
            starts = self._offsets(partitions, OffsetSpec.earliest())
            ends = self._offsets(partitions, OffsetSpec.latest())
            dead_ends = {p: ends[(t, p)] for t, p in partitions if t == self.topics.dead_letters}
            dead_starts = {
                p: starts[(t, p)] for t, p in partitions if t == self.topics.dead_letters
            }
            return {
                "topics": _topics(partitions, starts, ends),
                "groups": [self._group(watch, partitions, starts, ends) for watch in self.groups],
                "dead_letters": self._open()[1].read(dead_starts, dead_ends),
            }

    def close(self) -> None:
        """Close the dead-letter reader."""
        with self._lock:
            if self._clients is not None:
                self._clients[1].close()
                self._clients = None

    def _partitions(self) -> list[tuple[str, int]]:
        """(topic, partition) of every pipeline topic that exists."""
        metadata = self._admin.list_topics(timeout=self.timeout_s)
        return [
            (spec.name, partition)
            for spec in self.topics.specs
            if (topic := metadata.topics.get(spec.name)) is not None and topic.error is None
            for partition in sorted(topic.partitions)
        ]

    def _offsets(
        self, partitions: list[tuple[str, int]], spec: OffsetSpec
    ) -> dict[tuple[str, int], int]:
        if not partitions:
            return {}
        wanted = {TopicPartition(t, p): spec for t, p in partitions}
        futures = self._admin.list_offsets(wanted, request_timeout=self.timeout_s)
        return {
            (tp.topic, tp.partition): future.result(timeout=self.timeout_s).offset
            for tp, future in futures.items()
        }

    def _group(
        self,
        watch: GroupWatch,
        partitions: list[tuple[str, int]],
        starts: dict[tuple[str, int], int],
        ends: dict[tuple[str, int], int],
    ) -> dict[str, Any]:
        """The group's state, members and, per partition it reads, committed offset and lag."""
        read = [(t, p) for t, p in partitions if t in watch.topics]
        committed = self._committed(watch.group, read)
        rows = []
        for topic, partition in read:
            offset = committed.get((topic, partition), -1)
            progress = PartitionProgress(
                topic,
                partition,
                starts[(topic, partition)],
                ends[(topic, partition)],
                offset if offset >= 0 else None,
            )
            rows.append(
                {
                    "topic": topic,
                    "partition": partition,
                    "committed": progress.committed,
                    "end": progress.end,
                    "lag": progress.lag(self.topics.transactional),
                }
            )
        state, members = self._describe(watch.group)
        return {
            "role": watch.role,
            "group": watch.group,
            "state": state,
            "members": members,
            "lag": sum(row["lag"] for row in rows),
            "partitions": rows,
        }

    def _committed(self, group: str, read: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if not read:
            return {}
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in read])
        future = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout_s)[
            group
        ]
        answer = future.result(timeout=self.timeout_s)
        return {(tp.topic, tp.partition): tp.offset for tp in answer.topic_partitions}

    def _describe(self, group: str) -> tuple[str, int]:
        """The group's state (e.g. STABLE, EMPTY, DEAD) and its number of members."""
        future = self._admin.describe_consumer_groups([group], request_timeout=self.timeout_s)[
            group
        ]
        try:
            description = future.result(timeout=self.timeout_s)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return "DEAD", 0
            raise
        return description.state.name, len(description.members)


def _topics(
    partitions: list[tuple[str, int]],
    starts: dict[tuple[str, int], int],
    ends: dict[tuple[str, int], int],
) -> list[dict[str, Any]]:
    """Per topic: its partitions with start and end offsets, and how many offsets it
    retains (messages, and the commit markers of transactional writes)."""
    by_topic: dict[str, list[dict[str, int]]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(
            {
                "partition": partition,
                "start": starts[(topic, partition)],
                "end": ends[(topic, partition)],
            }
        )
    return [
        {
            "topic": topic,
            "partitions": rows,
            "retained_offsets": sum(row["end"] - row["start"] for row in rows),
        }
        for topic, rows in by_topic.items()
    ]
