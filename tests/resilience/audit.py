"""Checks a ledger against what the pipeline says and what Kafka committed."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition

from asyncarch.config import KafkaSettings
from schemas.codec import AvroCodec, codec_for, known_writer_schemas, load_schema
from schemas.registry import SchemaRegistry, SchemaRegistrySettings
from tests.resilience.ledger import Ledger

__all__ = ["Audit", "audit", "committed_results", "terminal_states"]

TERMINAL = {"SUCCESS", "FAILED", "CANCELLED"}
SIMILARITY_TOLERANCE = 1e-4


@dataclass
class Audit:
    """What became of every accepted task."""

    states: dict[str, dict[str, Any]]
    results: dict[str, list[dict[str, Any]]]
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def completed(self) -> int:
        return sum(1 for s in self.states.values() if s.get("status") == "SUCCESS")

    @property
    def not_success(self) -> Counter[str]:
        return Counter(
            s.get("status", "?") for s in self.states.values() if s.get("status") != "SUCCESS"
        )


def _state(client: httpx.Client, task_id: str) -> dict[str, Any] | None:
    try:
        response = client.get(f"/v1/tasks/{task_id}")
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


def terminal_states(base_url: str, task_ids: list[str], timeout_s: float) -> dict[str, dict]:
    """Each task's state, polled (a few at a time) until terminal or ``timeout_s``."""
    states: dict[str, dict] = {}
    pending = list(task_ids)
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=base_url, timeout=15) as client, ThreadPoolExecutor(8) as pool:
        while pending and time.monotonic() < deadline:
            for task_id, state in zip(
                pending, pool.map(lambda t: _state(client, t), pending), strict=True
            ):
                if state is not None:
                    states[task_id] = state
            pending = [t for t in pending if states.get(t, {}).get("status") not in TERMINAL]
            if pending:
                time.sleep(0.5)
    return states


def committed_results(
    kafka: KafkaSettings, topic: str, idle_s: float = 3.0, registry_url: str | None = None
) -> list[dict]:
    """Every committed result event on ``topic``, read from the beginning (read_committed);
    with ``registry_url``, Confluent-framed ones too."""
    consumer = Consumer(
        kafka.librdkafka(
            **{
                "group.id": f"chaos-audit-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
    )
    codec = codec_for("TaskResult") if registry_url is None else _registry_codec(registry_url)
    events: list[dict] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        last_message = time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() - last_message < idle_s and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None:
                    events.append(codec.decode(message.value()))
                    last_message = time.monotonic()
    finally:
        consumer.close()
    return events


def _registry_codec(url: str) -> AvroCodec:
    registry = SchemaRegistry.connect(SchemaRegistrySettings(url=url))
    return AvroCodec(load_schema("TaskResult"), known_writer_schemas(), registry)


def audit(
    ledger: Ledger,
    base_url: str,
    kafka: KafkaSettings,
    results_topic: str,
    encoder: Any,
    timeout_s: float,
    sample: int = 40,
    registry_url: str | None = None,
) -> Audit:
    """Terminal state and committed results of every accepted task; a sample is
    recomputed with the model and compared."""
    task_ids = sorted(ledger.accepted)
    states = terminal_states(base_url, task_ids, timeout_s)
    wanted = set(task_ids)
    results: dict[str, list[dict]] = {t: [] for t in task_ids}
    for event in committed_results(kafka, results_topic, registry_url=registry_url):
        if event["task_id"] in wanted:
            results[event["task_id"]].append(event)
    report = Audit(states, results)
    for task_id in task_ids:
        status = states.get(task_id, {}).get("status")
        if status not in TERMINAL or (status == "SUCCESS" and not results[task_id]):
            report.lost.append(task_id)
        if len(results[task_id]) > 1:
            report.duplicated.append(task_id)
    successes = [t for t in task_ids if len(results[t]) == 1]
    for task_id in random.Random(1).sample(successes, min(sample, len(successes))):
        report.checked += 1
        inputs = ledger.accepted[task_id].inputs
        vectors = encoder.encode([inputs["item_a"], inputs["item_b"]])
        expected = float(vectors[0].dot(vectors[1]))
        got = results[task_id][0]["output"]["similarity"]
        if abs(expected - got) > SIMILARITY_TOLERANCE:
            report.mismatched.append(f"{task_id}: {got} != {expected}")
    return report
