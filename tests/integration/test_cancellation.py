"""Cancelling tasks: a PENDING task never runs; finished ones answer 409."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from asyncarch.config import KafkaSettings
from tests.helpers import read_all
from tests.stack import Pipeline, launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}


def test_a_cancelled_pending_task_never_runs(kafka: KafkaSettings, tmp_path: Path) -> None:
    pipeline = launch_pipeline(kafka, tmp_path, names=("processor", "api"))  # no worker yet
    try:
        with pipeline.client() as client:
            doomed = client.post("/v1/tasks", json=SIMILARITY).json()["task_id"]
            response = client.post(f"/v1/tasks/{doomed}/cancel")
            assert response.status_code == 202, response.text
            assert wait_for_state(client, doomed, {"CANCELLED"})["status"] == "CANCELLED"
            pipeline.services.start("worker")
            survivor = client.post("/v1/tasks", json=SIMILARITY).json()["task_id"]
            assert wait_for_state(client, survivor, {"SUCCESS"}, timeout_s=120)
            state = client.get(f"/v1/tasks/{doomed}").json()
            result = client.get(f"/v1/tasks/{doomed}/result")
    finally:
        pipeline.services.stop()
    assert state["status"] == "CANCELLED"
    assert [h["state"] for h in state["history"]] == ["PENDING", "CANCELLED"]
    assert result.status_code == 200 and result.json()["output"] is None
    results = read_all(pipeline.kafka, pipeline.topics.results, 1)
    assert {m.key() for m in results} == {survivor.encode()}
    assert "cancelled task skipped" in (pipeline.log_dir / "worker.log").read_text()


def test_cancelling_a_finished_task_is_409_and_unknown_is_404(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post("/v1/tasks", json=SIMILARITY).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
        conflict = client.post(f"/v1/tasks/{task_id}/cancel")
        assert conflict.status_code == 409
        assert conflict.json()["title"] == "Task already finished"
        assert client.get(f"/v1/tasks/{task_id}").json()["status"] == "SUCCESS"
        assert client.post(f"/v1/tasks/{uuid.uuid4()}/cancel").status_code == 404
