"""The local broker launcher: durable data across a restart, clean stop, status."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from asyncarch.cli import main as cli_main
from asyncarch.config import KafkaSettings
from asyncarch.local_kafka import LocalKafka, cache_root
from asyncarch.process import alive
from tests.stack import free_port

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


def _kafka_verb(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "asyncarch.cli", "kafka", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_kafka_up_leaves_a_daemon_that_a_second_up_finds_and_down_stops(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "kafka-dist").symlink_to(cache_root() / "kafka-dist")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    env["ASYNCARCH_CACHE"] = str(tmp_path / "cache")
    ports = ["--port", str(free_port()), "--controller-port", str(free_port())]
    broker = LocalKafka(state_dir=tmp_path / "cache" / "kafka-node")
    try:
        assert _kafka_verb(env, "up", *ports).returncode == 0
        pid = broker.running_pid()
        assert pid is not None and alive(pid), "the broker outlives `asyncarch kafka up`"
        second = _kafka_verb(env, "up", *ports)
        assert second.returncode == 1
        assert f"is already running (pid {pid}" in second.stderr
        assert broker.running_pid() == pid
        down = _kafka_verb(env, "down")
        assert (down.returncode, down.stdout.strip()) == (0, "Kafka stopped")
        assert broker.running_pid() is None
        assert not alive(pid)
    finally:
        broker.stop()
