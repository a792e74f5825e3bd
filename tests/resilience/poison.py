"""Poison messages written straight to the requests topic, and where they end up."""

from __future__ import annotations

import os
import time
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for

__all__ = ["BIG_VALUE_BYTES", "HUGE_VALUE_BYTES", "dead_letters", "write_poison"]

# The broker's (and topic's) default max.message.bytes is 1048588 per record
# batch; the biggest single value that fits leaves room for key, headers and
# the batch overhead.
BIG_VALUE_BYTES = 1_040_000
HUGE_VALUE_BYTES = 10 * 1024 * 1024


def _write(kafka: KafkaSettings, topic: str, value: bytes) -> tuple[int, int] | KafkaError:
    """Write one message; its (partition, offset), or the error the broker answered."""
    producer = Producer(kafka.producer(**{"message.max.bytes": 16 * 1024 * 1024}))
    outcome: list[tuple[int, int] | KafkaError] = []

    def delivered(err: KafkaError | None, message) -> None:  # type: ignore[no-untyped-def]
        outcome.append(err if err is not None else (message.partition(), message.offset()))

    producer.produce(topic, key=str(uuid.uuid4()).encode(), value=value, on_delivery=delivered)
    producer.flush(30)
    assert outcome, "no delivery report within 30 s"
    return outcome[0]


def write_poison(kafka: KafkaSettings, topic: str) -> dict[str, object]:
    """Random bytes, an unknown schema fingerprint, the biggest value the topic takes,
    and a 10 MiB value. Returns what each write gave: (partition, offset) or the error."""
    fake_body = b"\x02\x48" + os.urandom(64)
    return {
        "random bytes": _write(kafka, topic, os.urandom(256)),
        "unknown fingerprint": _write(kafka, topic, b"\xc3\x01" + os.urandom(8) + fake_body),
        f"{BIG_VALUE_BYTES} B value": _write(kafka, topic, os.urandom(BIG_VALUE_BYTES)),
        "10 MiB value": _write(kafka, topic, os.urandom(HUGE_VALUE_BYTES)),
    }


def dead_letters(
    kafka: KafkaSettings, topic: str, wanted: set[tuple[int, int]], timeout_s: float
) -> dict[tuple[int, int], dict]:
    """Committed dead letters whose source (partition, offset) is in ``wanted``."""
    consumer = Consumer(
        kafka.librdkafka(
            **{
                "group.id": f"chaos-dlq-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.max.bytes": 64 * 1024 * 1024,
                "max.partition.fetch.bytes": 16 * 1024 * 1024,
            }
        )
    )
    codec = codec_for("DeadLetter")
    found: dict[tuple[int, int], dict] = {}
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        deadline = time.monotonic() + timeout_s
        while set(found) < wanted and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                if message.error() is None:
                    letter = codec.decode(message.value())
                    source = (letter["source_partition"], letter["source_offset"])
                    if source in wanted:
                        found[source] = letter
    finally:
        consumer.close()
    return found
