"""With Kafka unreachable, the API says so within a second and accepts nothing."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.helpers import eventually
from tests.stack import free_port

pytestmark = pytest.mark.integration

SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}
# The bound of issue #9: a refusal while the broker is known to be down.
FAST_S = 1.0


def _start_api(
    tmp_path: Path, bootstrap: str, prefix: str, processor_url: str | None = None
) -> tuple[ServiceGroup, str]:
    port = free_port()
    services = ServiceGroup(
        env={
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "API_PORT": str(port),
            "API_PROCESSOR_URL": processor_url or f"http://127.0.0.1:{free_port()}",
            "TOPIC_PREFIX": prefix,
        },
        log_dir=tmp_path,
    )
    services.start("api")
    url = f"http://127.0.0.1:{port}"
    eventually(
        lambda: httpx.get(f"{url}/healthz", timeout=1),
        60,
        "the API answering /healthz",
        ignoring=(httpx.HTTPError,),
    )
    return services, url


def _accepted_again(url: str) -> httpx.Response | None:
    response = _post(url)[0]
    assert response.status_code in (202, 503), response.text
    return response if response.status_code == 202 else None


def _post(url: str, headers: dict[str, str] | None = None) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = httpx.post(f"{url}/v1/tasks", json=SIMILARITY, headers=headers, timeout=30)
    return response, time.monotonic() - started


def _assert_refused_fast(url: str, headers: dict[str, str] | None = None) -> None:
    response, elapsed = _post(url, headers)
    assert response.status_code == 503, response.text
    assert elapsed < FAST_S, elapsed
    problem = response.json()
    assert problem["title"] == "Kafka unavailable"
    assert "task_id" not in problem
    assert response.headers["Retry-After"] == "1"  # the outage is probed twice a second


@pytest.fixture
def hung_processor() -> Iterator[str]:
    """A processor address that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_post_answers_503_within_a_second_when_no_broker_listens(
    tmp_path: Path, hung_processor: str
) -> None:
    services, url = _start_api(
        tmp_path, f"127.0.0.1:{free_port()}", f"down-{uuid.uuid4().hex[:8]}", hung_processor
    )
    try:
        for i in range(3):
            _assert_refused_fast(url)
            # A retry with an Idempotency-Key must not wait on the task-state lookup.
            _assert_refused_fast(url, {"Idempotency-Key": f"retry-{i}"})
        assert httpx.get(f"{url}/healthz").status_code == 200
        started = time.monotonic()
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"] is False
        assert time.monotonic() - started < FAST_S
    finally:
        services.stop()


def _accepted_ids(kafka: KafkaSettings, topic: str) -> set[str]:
    """Keys of every request event on ``topic`` (read to its end)."""
    consumer = Consumer(kafka.librdkafka(**{"group.id": uuid.uuid4().hex}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        keys: set[str] = set()
        read = dict.fromkeys(partitions, 0)
        deadline = time.monotonic() + 30
        while any(read[p] < ends[p] for p in partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                keys.add(message.key().decode())
                read[message.partition()] = message.offset() + 1
        return keys
    finally:
        consumer.close()


def test_an_outage_is_refused_fast_and_every_202_was_written(
    own_broker: LocalKafka, tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=own_broker.bootstrap_servers)
    topics = TopicSettings(prefix=f"outage-{uuid.uuid4().hex[:8]}", partitions=1)
    ensure_topics(kafka, topics)
    services, url = _start_api(tmp_path, own_broker.bootstrap_servers, topics.prefix)
    accepted: list[str] = []
    try:
        before, _ = _post(url)
        assert before.status_code == 202, before.text
        accepted.append(before.json()["task_id"])
        own_broker.stop()
        # Until librdkafka notices, a write may still wait out the publish timeout;
        # once it has, every answer is a fast 503.
        deadline = time.monotonic() + 30
        while (response := _post(url)[0]).status_code != 503:
            assert response.status_code == 202, response.text
            accepted.append(response.json()["task_id"])
            assert time.monotonic() < deadline, "never refused while the broker was down"
        for _ in range(5):
            _assert_refused_fast(url)
        own_broker.start()
        response = eventually(
            lambda: _accepted_again(url), 60, "accepted after the broker came back"
        )
        accepted.append(response.json()["task_id"])
    finally:
        services.stop()
    assert set(accepted) <= _accepted_ids(kafka, topics.requests)
