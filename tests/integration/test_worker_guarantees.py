"""Workers under crashes and rebalances: every task gets exactly one committed result."""

from __future__ import annotations

import signal
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from asyncarch.config import KafkaSettings
from asyncarch.supervisor import ServiceGroup
from schemas.codec import codec_for
from schemas.headers import event_headers
from schemas.topics import TopicSettings
from tests.helpers import NotYet, eventually
from tests.stack import service_env

pytestmark = pytest.mark.integration


def submit_requests(kafka: KafkaSettings, topics: TopicSettings, count: int) -> set[str]:
    """Write ``count`` similarity requests straight to the requests topic."""
    codec = codec_for("TaskRequest")
    producer = Producer(kafka.producer())
    task_ids = set()
    for i in range(count):
        task_id = str(uuid.uuid4())
        task_ids.add(task_id)
        event = {
            "task_id": task_id,
            "kind": "similarity",
            "inputs": {"item_a": f"text number {i}", "item_b": "a television set"},
            "submitted_at": int(time.time() * 1000),
        }
        producer.produce(
            topics.requests,
            key=task_id.encode(),
            value=codec.encode(event),
            headers=event_headers(codec.schema, task_id, "test"),
        )
    assert producer.flush(30) == 0
    return task_ids


class CommittedResults:
    """Follows the results topic with read_committed and counts results per task."""

    def __init__(self, kafka: KafkaSettings, topics: TopicSettings) -> None:
        self.counts: Counter[str] = Counter()
        self._consumer = Consumer(
            kafka.librdkafka(
                **{
                    "group.id": f"results-{uuid.uuid4().hex}",
                    "auto.offset.reset": "earliest",
                    "isolation.level": "read_committed",
                    "enable.auto.commit": False,
                }
            )
        )
        self._consumer.subscribe([topics.results])

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in self._consumer.consume(500, timeout=0.2):
                if not message.error():
                    self.counts[codec_for("TaskResult").decode(message.value())["task_id"]] += 1

    def wait_for(self, task_ids: set[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while set(self.counts) < task_ids and time.monotonic() < deadline:
            self.drain(0.5)
        self.drain(3)  # anything duplicated would arrive now

    def close(self) -> None:
        self._consumer.close()


def wait_for_log(path: Path, text: str, count: int, timeout_s: float) -> None:
    def seen_enough() -> bool | NotYet:
        log = path.read_text() if path.exists() else ""
        return log.count(text) >= count or NotYet(log[-3000:])

    eventually(seen_enough, timeout_s, f"{text!r} seen {count} times in {path}", 0.05)


def workers(kafka: KafkaSettings, topics: TopicSettings, log_dir: Path) -> ServiceGroup:
    env = service_env(
        kafka,
        topics,
        uuid.uuid4().hex[:8],
        WORKER_MAX_BATCH="8",
        WORKER_TRANSACTION_TIMEOUT_MS="5000",
    )
    return ServiceGroup(env=env, log_dir=log_dir)


@pytest.mark.parametrize("same_worker_id", [True, False], ids=["restarted", "taken-over"])
def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    kafka: KafkaSettings, topic_factory: TopicSettings, tmp_path: Path, same_worker_id: bool
) -> None:
    group = workers(kafka, topic_factory, tmp_path)
    group.env["WORKER_WORKER_ID"] = "w-first"
    results = CommittedResults(kafka, topic_factory)
    try:
        task_ids = submit_requests(kafka, topic_factory, 200)
        first = group.start("first", "worker")
        wait_for_log(tmp_path / "first.log", "batch committed", 3, timeout_s=120)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        if not same_worker_id:
            group.env["WORKER_WORKER_ID"] = "w-second"
        group.start("second", "worker")
        results.wait_for(task_ids, timeout_s=180)
    finally:
        group.stop()
        results.close()
    assert set(results.counts) == task_ids, f"{len(task_ids - set(results.counts))} lost"
    duplicated = {task: n for task, n in results.counts.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} tasks have several committed results"


def test_two_workers_share_partitions_and_one_stopping_hands_over(
    kafka: KafkaSettings, topic_factory: TopicSettings, tmp_path: Path
) -> None:
    group = workers(kafka, topic_factory, tmp_path)
    results = CommittedResults(kafka, topic_factory)
    try:
        group.env["WORKER_WORKER_ID"] = "w-a"
        group.start("a", "worker")
        group.env["WORKER_WORKER_ID"] = "w-b"
        b = group.start("b", "worker")
        for name in ("a", "b"):
            wait_for_log(tmp_path / f"{name}.log", "partitions assigned", 1, timeout_s=120)
        first_wave = submit_requests(kafka, topic_factory, 60)
        results.wait_for(first_wave, timeout_s=120)
        b.send_signal(signal.SIGTERM)
        assert b.wait(30) == 0
        second_wave = submit_requests(kafka, topic_factory, 60)
        results.wait_for(first_wave | second_wave, timeout_s=120)
    finally:
        group.stop()
        results.close()
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("a", "b")}
    assert "batch committed" in logs["a"] and "batch committed" in logs["b"]
    assert "worker stopped" in logs["b"]
    assert set(results.counts) == first_wave | second_wave
    assert max(results.counts.values()) == 1
