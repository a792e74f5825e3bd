"""The worker's transactions across a broker SIGKILL and restart (issue #9).

With every broker down, librdkafka re-bootstraps and decommissions the brokers it
knew but keeps one as the cached group coordinator; the first
``send_offsets_to_transaction`` after the broker's return then never returned
(confluentinc/librdkafka#5511), and the worker stalled without a word. This runs
the worker's BatchCommitter, with the worker's producer settings, on a broker of
its own that is SIGKILLed and restarted.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from inference_consumer.committer import (
    BatchCommitter,
    FinishedBatch,
    Outcome,
    transactional_config,
)
from inference_consumer.config import WorkerSettings
from inference_consumer.emitter import EventEmitter
from inference_consumer.model import ModelIdentity
from inference_consumer.transactions import call_with_deadline
from schemas.codec import codec_for
from schemas.exceptions import EventDecodeError
from schemas.topics import TopicSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BATCH = 3
OUTAGE_S = 5.0  # how long the broker stays dead: the fault, not a wait for a condition
COMMIT_DEADLINE_S = 60.0


def _write(kafka: KafkaSettings, topic: str, count: int) -> None:
    """``count`` values that no reader can decode: each batch dead-letters them."""
    producer = Producer(kafka.producer())
    for _ in range(count):
        producer.produce(topic, key=uuid.uuid4().hex.encode(), value=b"not avro")
    assert producer.flush(60) == 0


def _consume(consumer: Consumer, count: int, timeout_s: float = 90.0) -> list[Message]:
    deadline = time.monotonic() + timeout_s
    messages: list[Message] = []
    while len(messages) < count and time.monotonic() < deadline:
        messages += [m for m in consumer.consume(count - len(messages), 0.5) if not m.error()]
    assert len(messages) == count, f"consumed {len(messages)} of {count}"
    return messages


def _commit(committer: BatchCommitter, consumer: Consumer, messages: list[Message]) -> Outcome:
    """One batch through the worker's transaction, waited for at most COMMIT_DEADLINE_S."""
    batch = FinishedBatch(messages, [], [], [(m, EventDecodeError("test")) for m in messages])
    batch.group_metadata = consumer.consumer_group_metadata()
    committer.submit(batch)
    outcome = call_with_deadline(committer.wait, "commit", COMMIT_DEADLINE_S)
    assert outcome is not None
    return outcome


def _dead_letter_sources(kafka: KafkaSettings, topic: str, count: int) -> Counter[int]:
    """How often each requests offset is in a committed dead letter."""
    reader = Consumer(
        kafka.librdkafka(
            **{
                "group.id": f"audit-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
    )
    reader.assign([TopicPartition(topic, 0, 0)])
    try:
        codec = codec_for("DeadLetter")
        sources = Counter(codec.decode(m.value())["source_offset"] for m in _consume(reader, count))
        sources.update(
            codec.decode(m.value())["source_offset"]
            for m in reader.consume(10, 2.0)
            if not m.error()
        )
        return sources
    finally:
        reader.close()


def test_a_batch_commits_once_after_the_broker_is_sigkilled_and_restarted(
    own_broker: LocalKafka,
) -> None:
    kafka = KafkaSettings(bootstrap_servers=own_broker.bootstrap_servers)
    topics = TopicSettings(prefix=f"t-{uuid.uuid4().hex[:10]}", partitions=1)
    ensure_topics(kafka, topics)
    settings = WorkerSettings(group_id=f"workers-{uuid.uuid4().hex[:8]}", worker_id="worker-0")
    consumer = Consumer(
        kafka.librdkafka(
            **{
                "group.id": settings.group_id,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
    )
    consumer.subscribe([topics.requests])
    emitter = EventEmitter(topics, settings.worker_id, ModelIdentity("none", "none", "cpu"))
    committer = BatchCommitter(
        lambda: Producer(kafka.producer(**transactional_config(settings))),
        emitter,
        keep_trying=lambda: True,
        transaction_timeout_s=settings.transaction_timeout_ms / 1000,
    )
    try:
        committer.init()
        _write(kafka, topics.requests, BATCH)
        assert _commit(committer, consumer, _consume(consumer, BATCH)) is Outcome.COMMITTED

        pid = own_broker.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        time.sleep(OUTAGE_S)
        own_broker.start()

        _write(kafka, topics.requests, BATCH)
        # Before the fix this never returned: send_offsets_to_transaction waited forever.
        assert _commit(committer, consumer, _consume(consumer, BATCH)) is Outcome.COMMITTED
        [committed] = consumer.committed([TopicPartition(topics.requests, 0)], timeout=30)
        assert committed.offset == 2 * BATCH
        sources = _dead_letter_sources(kafka, topics.dead_letters, 2 * BATCH)
        assert sources == Counter(range(2 * BATCH))  # each batch's transaction exactly once
    finally:
        committer.close()
        consumer.close()
