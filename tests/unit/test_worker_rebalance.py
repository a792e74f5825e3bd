"""The worker's poll loop when a partition is revoked and assigned again in one poll.

After a broker outage the group's session has timed out: the next poll revokes
(loses) the worker's partitions and assigns them again at once. The worker
dropped every message of a revoked partition from the batch, including the
ones consumed after the new assignment, and the next batch's offsets skipped
them: 4 tasks lost in the broker chaos test (issue #9).
"""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from inference_consumer.worker import InferenceWorker

TOPIC = "requests"


class FakeMessage:
    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeConsumer:
    """Committed offsets by partition; records seeks."""

    def __init__(self, committed: dict[int, int]) -> None:
        self._committed = committed
        self.seeks: list[tuple[int, int]] = []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self._committed.get(tp.partition, -1001))
            for tp in partitions
        ]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.partition, tp.offset))


def _worker(consumer: FakeConsumer, revoked: set[int], owned: set[int]) -> InferenceWorker:
    worker = InferenceWorker.__new__(InferenceWorker)  # only the loop's partition state
    worker.consumer = consumer  # type: ignore[assignment]
    worker._revoked = {(TOPIC, p) for p in revoked}
    worker._owned = owned
    worker._running = True
    return worker


def test_a_partition_assigned_again_goes_back_to_its_committed_offset() -> None:
    consumer = FakeConsumer(committed={1: 84})
    worker = _worker(consumer, revoked={1, 2}, owned={0, 1})
    batch = [FakeMessage(1, 84), FakeMessage(1, 85), FakeMessage(2, 83), FakeMessage(0, 10)]
    kept = worker._without_revoked(batch)  # type: ignore[arg-type]
    assert kept == [batch[3]]
    # Partition 1 is this worker's again: its dropped messages are consumed again.
    # Partition 2 moved to another worker, which starts at the committed offset.
    assert consumer.seeks == [(1, 84)]


def test_with_nothing_committed_it_starts_where_the_reset_policy_does() -> None:
    consumer = FakeConsumer(committed={})
    worker = _worker(consumer, revoked={1}, owned={1})
    assert worker._without_revoked([FakeMessage(1, 5)]) == []  # type: ignore[list-item]
    assert consumer.seeks == [(1, OFFSET_BEGINNING)]


def test_without_a_revocation_the_batch_is_kept_and_nothing_is_asked() -> None:
    consumer = FakeConsumer(committed={})
    worker = _worker(consumer, revoked=set(), owned={0, 1})
    batch = [FakeMessage(0, 1), FakeMessage(1, 2)]
    assert worker._without_revoked(batch) == batch  # type: ignore[arg-type]
    assert consumer.seeks == []
