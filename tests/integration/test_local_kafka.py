"""The local broker launcher: durable data across a restart, clean stop, status."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from asyncarch.cli import main as cli_main
from asyncarch.config import KafkaSettings
from asyncarch.local_kafka import LocalKafka
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def _read_one(kafka: KafkaSettings, topic: str) -> bytes | None:
    consumer = Consumer(
        kafka.librdkafka(**{"group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest"})
    )
    consumer.subscribe([topic])
    try:
        for _ in range(60):
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                return message.value()
        return None
    finally:
        consumer.close()


def test_data_survives_a_restart_and_stop_is_clean(tmp_path: Path) -> None:
    broker = LocalKafka(state_dir=tmp_path / "node", port=free_port(), controller_port=free_port())
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    try:
        pid = broker.start()
        assert broker.running_pid() == pid
        producer = Producer(kafka.producer())
        producer.produce("durable-check", key=b"k", value=b"kept")
        assert producer.flush(30) == 0
        assert broker.stop() is True
        assert broker.running_pid() is None
        broker.start()
        assert _read_one(kafka, "durable-check") == b"kept"
    finally:
        broker.destroy()
    assert not (tmp_path / "node").exists()


def test_kafka_verb_with_an_existing_cluster_provisions_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elsewhere:9092")
    assert cli_main(["kafka", "up"]) == 0
    assert "nothing to provision" in capsys.readouterr().out
