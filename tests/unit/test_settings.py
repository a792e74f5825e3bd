"""Settings: env to librdkafka keys, topic names, secrets."""

from __future__ import annotations

import pytest

from asyncarch.config import KafkaSettings
from schemas.topics import TopicSettings


def test_kafka_env_becomes_librdkafka_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "user")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    settings = KafkaSettings()
    config = settings.librdkafka(**{"group.id": "g"})
    assert config["bootstrap.servers"] == "k1:9092,k2:9092"
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.password"] == "s3cret"
    assert config["group.id"] == "g"
    assert "s3cret" not in repr(settings)


def test_producer_is_idempotent_acks_all_and_java_partitioned() -> None:
    config = KafkaSettings().producer()
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert config["partitioner"] == "murmur2_random"


def test_settings_are_frozen() -> None:
    with pytest.raises(ValueError):
        KafkaSettings().bootstrap_servers = "elsewhere:9092"  # type: ignore[misc]


def test_topic_names_come_from_one_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOPIC_PREFIX", "staging")
    topics = TopicSettings()
    names = [spec.name for spec in topics.specs]
    assert names == [
        "staging.tasks.requests",
        "staging.tasks.status",
        "staging.tasks.results",
        "staging.tasks.dead-letters",
        "staging.tasks.cancellations",
        "staging.tasks.state",
    ]
    state = next(s for s in topics.specs if s.name == topics.task_state)
    assert state.config["cleanup.policy"] == "compact"


def test_one_variable_names_each_consumer_group(monkeypatch: pytest.MonkeyPatch) -> None:
    from inference_consumer.config import WorkerSettings
    from producer_api.core.config import ApiSettings
    from stream_processors.config import ProcessorSettings

    api = ApiSettings()
    assert api.worker_group_id == WorkerSettings().group_id
    assert api.processor_group_id == ProcessorSettings().app_id
    monkeypatch.setenv("WORKER_GROUP_ID", "gpu-workers")
    monkeypatch.setenv("PROCESSOR_APP_ID", "states-eu")
    api = ApiSettings()
    assert (api.worker_group_id, WorkerSettings().group_id) == ("gpu-workers", "gpu-workers")
    assert (api.processor_group_id, ProcessorSettings().app_id) == ("states-eu", "states-eu")
