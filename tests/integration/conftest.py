"""Fixtures for integration tests: a real Kafka broker, a schema registry and the services.

The broker is the one named by ``KAFKA_BOOTSTRAP_SERVERS``, or else an
ephemeral single-node KRaft broker that this session provisions with ``mvn``
and starts. A missing broker fails the tests; they never skip. Likewise the
schema registry is the one named by ``TEST_SCHEMA_REGISTRY_URL``, or else a
local Apicurio Registry that ``mvn`` builds; only the tests that ask for it
start it (the other pipelines run without a registry: single-object framing).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from asyncarch.local_registry import LocalRegistry
from schemas.topics import TopicSettings
from tests.stack import TEST_PARTITIONS, Pipeline, free_port, launch_pipeline


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    """Settings pointing at the session's real broker."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield KafkaSettings(bootstrap_servers=servers)
        return
    broker = LocalKafka(
        state_dir=tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        yield KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    finally:
        broker.destroy()


@pytest.fixture(scope="session")
def schema_registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Confluent-compatible URL of the session's schema registry."""
    if url := os.environ.get("TEST_SCHEMA_REGISTRY_URL"):
        yield url
        return
    registry = LocalRegistry(state_dir=tmp_path_factory.mktemp("registry"), port=free_port())
    process = registry.start()
    try:
        yield registry.url
    finally:
        registry.stop(process)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of this test's own, so it can be stopped or killed without harming
    the other tests (they share the session's ``kafka``)."""
    broker = LocalKafka(state_dir=tmp_path / "node", port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.destroy()


@pytest.fixture
def topic_factory(kafka: KafkaSettings) -> Iterator[TopicSettings]:
    """A fresh, created set of pipeline topics per test, so tests never share messages."""
    topics = TopicSettings(prefix=f"t-{uuid.uuid4().hex[:10]}", partitions=TEST_PARTITIONS)
    ensure_topics(kafka, topics)
    yield topics


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used a pipeline reports the tail of each service's log."""
    outcome = yield
    report = outcome.get_result()
    running = getattr(item, "funcargs", {}).get("pipeline")
    if report.failed and isinstance(running, Pipeline):
        report.sections.append(("pipeline logs", running.logs()))


@pytest.fixture(scope="module")
def pipeline(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """API, one worker and one Faust processor on fresh topics, shared by a module's tests."""
    result = launch_pipeline(kafka, tmp_path_factory.mktemp("pipeline"))
    yield result
    result.services.stop()
