"""Retention: a finished task expires after the TTL and then answers 410 Gone, not 404."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from asyncarch.config import KafkaSettings
from tests.helpers import NotYet, eventually, replay_task_states, submit_similarity_tasks
from tests.stack import launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

TTL_S = 3.0


def test_a_finished_task_answers_410_after_the_ttl(kafka: KafkaSettings, tmp_path: Path) -> None:
    pipeline = launch_pipeline(
        kafka,
        tmp_path,
        PROCESSOR_TASK_TTL_S=str(TTL_S),
        PROCESSOR_EXPIRY_INTERVAL_S="0.5",
    )
    try:
        with pipeline.client() as client:
            (task_id,) = submit_similarity_tasks(client, 1, "expiring")
            finished = wait_for_state(client, task_id, {"SUCCESS"})
            gone = _wait_for_status(client, f"/v1/tasks/{task_id}", 410, timeout_s=TTL_S + 20)
            expired_after_s = time.time() - finished["updated_at"] / 1000
            result = client.get(f"/v1/tasks/{task_id}/result")
            unknown = client.get(f"/v1/tasks/{uuid.uuid4()}")
            (fresh,) = submit_similarity_tasks(client, 1, "after expiry")
            fresh_state = wait_for_state(client, fresh, {"SUCCESS"})
    finally:
        pipeline.services.stop()

    assert expired_after_s >= TTL_S
    assert gone.headers["content-type"] == "application/problem+json"
    body = gone.json()
    assert (body["status"], body["title"]) == (410, "Task expired")
    assert task_id in body["detail"]
    assert result.status_code == 410
    assert unknown.status_code == 404
    assert fresh_state["status"] == "SUCCESS"

    # The public topic ends the task with a tombstone; so does the table's changelog.
    replayed = replay_task_states(
        pipeline.kafka, pipeline.topics.task_state, lambda latest: latest.get(task_id, 0) is None
    )
    assert replayed[task_id] is None
    changelog = f"{pipeline.services.env['PROCESSOR_APP_ID']}-task-state-changelog"
    assert _last_changelog_value(pipeline.kafka, changelog, task_id) is None


def test_a_task_finished_before_a_restart_still_expires(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    """The expiry timer finds finished tasks in an index kept as the table changes;
    after a restart the index is rebuilt from the restored table, so a task that
    finished before it still expires."""
    pipeline = launch_pipeline(kafka, tmp_path)  # the default TTL: 7 days
    try:
        with pipeline.client() as client:
            (task_id,) = submit_similarity_tasks(client, 1, "finished before the restart")
            wait_for_state(client, task_id, {"SUCCESS"})
            processor = pipeline.services.processes["processor"]
            processor.kill()
            processor.wait(10)
            pipeline.services.start(
                "processor",
                env={"PROCESSOR_TASK_TTL_S": str(TTL_S), "PROCESSOR_EXPIRY_INTERVAL_S": "0.5"},
            )
            # 503 while the processor starts and restores its table
            gone = _wait_for_status(client, f"/v1/tasks/{task_id}", 410, 120, (200, 503))
    finally:
        pipeline.services.stop()
    assert task_id in gone.json()["detail"]


def _last_changelog_value(kafka: KafkaSettings, topic: str, task_id: str) -> bytes | None:
    consumer = Consumer(
        kafka.librdkafka(
            **{"group.id": f"changelog-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
        )
    )
    consumer.subscribe([topic])
    last = b"never seen"
    deadline = time.monotonic() + 30
    try:
        while last is not None and time.monotonic() < deadline:
            for message in consumer.consume(100, timeout=0.5):
                if not message.error() and message.key() == task_id.encode():
                    last = message.value()
    finally:
        consumer.close()
    return last


def _wait_for_status(client, path: str, status: int, timeout_s: float, meanwhile=(200,)):  # type: ignore[no-untyped-def]
    def answered():  # type: ignore[no-untyped-def]
        response = client.get(path)
        if response.status_code == status:
            return response
        assert response.status_code in meanwhile, response.text
        return NotYet(response.text)

    return eventually(answered, timeout_s, f"{path} answering {status}", 0.25)
