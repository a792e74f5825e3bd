"""The processor commits its offsets on the results topic up to the end (issue #9).

Workers write results in transactions, so the results topic holds commit and
abort markers and the records of aborted transactions, none of which a
``read_committed`` consumer delivers. If the processor's committed offsets lag
behind them, a restarted processor re-reads the topic and recovers slowly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.helpers import NotYet, eventually, wait_healthy
from tests.stack import free_port, service_env

pytestmark = pytest.mark.integration

RECORDS_PER_TRANSACTION = 3
TRANSACTIONS = 12
# Faust commits every 2.8 s; the lag it had moved one transaction per commit.
COMMIT_BOUND_S = 15.0


class ResultsWriter:
    """Writes to partition 0 of the results topic as a worker does: in transactions."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.topic = topic
        self.producer = Producer(kafka.librdkafka(**{"transactional.id": uuid.uuid4().hex}))
        self.producer.init_transactions(30)

    def transaction(self, commit: bool = True) -> None:
        self.producer.begin_transaction()
        for i in range(RECORDS_PER_TRANSACTION):
            # Not a TaskResult: the agent skips it, and acks it like any other.
            self.producer.produce(self.topic, key=f"task-{i}".encode(), value=b"-", partition=0)
        self.producer.flush(30)
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.abort_transaction(30)

    def transactions(self, count: int) -> None:
        """``count`` committed transactions with an aborted one in the middle."""
        for i in range(count):
            self.transaction(commit=True)
            if i == count // 2:
                self.transaction(commit=False)


class ResultsOffsets:
    """The processor group's committed offset and the end of results partition 0."""

    def __init__(self, kafka: KafkaSettings, topic: str, group: str) -> None:
        self.partition = TopicPartition(topic, 0)
        self.group = group
        self.admin = AdminClient(kafka.librdkafka())
        self.reader = Consumer(kafka.librdkafka(**{"group.id": f"offsets-{uuid.uuid4().hex}"}))

    def committed(self) -> int:
        request = ConsumerGroupTopicPartitions(self.group, [self.partition])
        (future,) = self.admin.list_consumer_group_offsets([request]).values()
        return int(future.result(timeout=10).topic_partitions[0].offset)

    def end(self) -> int:
        return int(self.reader.get_watermark_offsets(self.partition, timeout=10)[1])

    def wait_committed(self, reached: int, timeout_s: float) -> None:
        """Until the committed offset is at least ``reached``; fails past the bound."""

        def at_reached() -> bool | NotYet:
            seen = self.committed()
            return seen >= reached or NotYet(f"committed offset {seen} (end {self.end()})")

        eventually(at_reached, timeout_s, f"committed offset at {reached}")

    def close(self) -> None:
        self.reader.close()


@pytest.fixture
def results(kafka: KafkaSettings) -> Iterator[tuple[TopicSettings, str]]:
    """A one-partition topic set and a processor group id of this test's own."""
    topics = TopicSettings(prefix=f"pc-{uuid.uuid4().hex[:10]}", partitions=1)
    ensure_topics(kafka, topics)
    yield topics, f"processor-{topics.prefix}"


def start_processor(env: dict[str, str], log_dir: Path, name: str) -> ServiceGroup:
    services = ServiceGroup(env=env, log_dir=log_dir)
    services.start(name, verb="processor")
    wait_healthy(int(env["PROCESSOR_WEB_PORT"]), services)
    return services


def test_committed_offsets_pass_transaction_markers(
    kafka: KafkaSettings, results: tuple[TopicSettings, str], tmp_path: Path
) -> None:
    topics, group = results
    env = service_env(
        kafka,
        topics,
        topics.prefix,
        PROCESSOR_APP_ID=group,
        PROCESSOR_WEB_PORT=str(free_port()),
        PROCESSOR_DATA_DIR=str(tmp_path / "processor-data"),
    )
    writer = ResultsWriter(kafka, topics.results)
    offsets = ResultsOffsets(kafka, topics.results, group)
    writer.transactions(TRANSACTIONS)
    services = start_processor(env, tmp_path, "processor")
    try:
        # Nothing is delivered after the last commit marker, so the committed
        # offset may rest on it: one short of the end.
        offsets.wait_committed(offsets.end() - 1, COMMIT_BOUND_S)
        services.stop()
        # After the restart the first delivered record lies past the marker the
        # committed offset points at, an aborted transaction and its marker.
        writer.transaction(commit=False)
        writer.transactions(TRANSACTIONS)
        services = start_processor(env, tmp_path, "processor-restarted")
        offsets.wait_committed(offsets.end() - 1, COMMIT_BOUND_S)
    finally:
        services.stop()
        offsets.close()
