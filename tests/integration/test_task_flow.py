"""Tasks posted over HTTP travel the real pipeline and come back right."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest
import torch

from inference_consumer.config import default_model_dir
from inference_consumer.model import SentenceEncoder
from tests.stack import Pipeline, wait_for_state

pytestmark = pytest.mark.integration

PAIRS = [(f"item {i} TV", f"brand {i % 5} Samsung") for i in range(18)] + [
    ("TV", "Samsung"),
    ("a cat sits on the mat", "a dog lies on the rug"),
]


def test_twenty_similarity_tasks_match_the_model_in_process(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_ids = []
        for item_a, item_b in PAIRS:
            response = client.post(
                "/v1/tasks",
                json={"kind": "similarity", "inputs": {"item_a": item_a, "item_b": item_b}},
            )
            assert response.status_code == 202, response.text
            assert response.headers["Location"] == f"/v1/tasks/{response.json()['task_id']}"
            task_ids.append(response.json()["task_id"])
        for task_id in task_ids:
            assert wait_for_state(client, task_id, {"SUCCESS", "FAILED"})["status"] == "SUCCESS"
        results = [client.get(f"/v1/tasks/{task_id}/result").json() for task_id in task_ids]

    encoder = SentenceEncoder(default_model_dir(), "all-MiniLM-L6-v2")
    for (item_a, item_b), result in zip(PAIRS, results, strict=True):
        a, b = encoder.encode([item_a, item_b])
        expected = float(torch.dot(a, b))
        assert result["status"] == "SUCCESS"
        assert result["output"]["similarity"] == pytest.approx(expected, abs=1e-5)
        assert result["output"]["embedding_a"] == pytest.approx(a.tolist(), abs=1e-5)
        assert result["model"]["device"] == "cpu"


def test_embed_task_returns_one_vector_per_text(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks", json={"kind": "embed", "inputs": {"texts": ["one", "two", "three"]}}
        ).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
        output = client.get(f"/v1/tasks/{task_id}/result").json()["output"]
    assert output["dimensions"] == 384
    assert len(output["vectors"]) == 3
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-4 for v in output["vectors"])


def test_status_right_after_202_is_never_unknown(pipeline: Pipeline) -> None:
    def submit_then_read(i: int) -> tuple[int, str]:
        with pipeline.client() as client:
            task_id = client.post(
                "/v1/tasks",
                json={"kind": "similarity", "inputs": {"item_a": f"x{i}", "item_b": "y"}},
            ).json()["task_id"]
            response = client.get(f"/v1/tasks/{task_id}")
            return response.status_code, response.json().get("status", "")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(submit_then_read, range(24)))
    assert all(code == 200 for code, _ in answers), answers
    assert {status for _, status in answers} <= {"PENDING", "RUNNING", "SUCCESS"}


def test_a_result_long_poll_answers_once_the_worker_finished(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks", json={"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "LG"}}
        ).json()["task_id"]
        started = time.monotonic()
        result = client.get(f"/v1/tasks/{task_id}/result", params={"wait": 30}, timeout=60)
        elapsed = time.monotonic() - started
    assert result.status_code == 200, result.text
    assert result.json()["status"] == "SUCCESS"
    assert -1.0 <= result.json()["output"]["similarity"] <= 1.0
    assert elapsed < 25, elapsed  # answered by the change, not by the 30 s bound


def test_a_submit_with_prefer_wait_answers_with_the_result(pipeline: Pipeline) -> None:
    task = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung TV"}}
    with pipeline.client() as client:
        answer = client.post("/v1/tasks", json=task, headers={"Prefer": "wait=30"}, timeout=60)
        assert answer.status_code == 200, answer.text  # one request: accepted and finished
        body = answer.json()
        assert answer.headers["Preference-Applied"] == "wait=30"
        assert answer.headers["Location"] == f"/v1/tasks/{body['task_id']}"
        assert answer.headers["content-type"] == "application/json"
        result = client.get(f"/v1/tasks/{body['task_id']}/result")
    assert body["status"] == "SUCCESS" and body["kind"] == "similarity"
    assert body == result.json()  # what GET .../result answers
    assert -1.0 <= body["output"]["similarity"] <= 1.0


def test_result_of_an_unfinished_or_unknown_task(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        unknown = client.get(f"/v1/tasks/{uuid.uuid4()}")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        assert unknown.json()["status"] == 404
        assert client.get(f"/v1/tasks/{uuid.uuid4()}/result").status_code == 404
        assert client.get("/v1/tasks/not-a-task-id").status_code == 404


def test_health_ready_and_metrics(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"kafka": True, "processor": True}
        assert "asyncarch_api_tasks_submitted_total" in client.get("/metrics").text


def test_processor_metrics_count_changes_latency_and_recovery(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks", json={"kind": "similarity", "inputs": {"item_a": "a", "item_b": "b"}}
        ).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
    port = pipeline.services.env["PROCESSOR_WEB_PORT"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics/", timeout=10).text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['asyncarch_processor_state_changes_total{state="SUCCESS"}'] >= 1
    assert samples['asyncarch_processor_task_latency_seconds_count{state="SUCCESS"}'] >= 1
    assert samples["asyncarch_processor_recovery_seconds"] > 0


def test_worker_metrics_count_batches_and_outcomes(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks", json={"kind": "embed", "inputs": {"texts": ["metrics"]}}
        ).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
    port = pipeline.services.env["WORKER_METRICS_PORT"]
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'asyncarch_worker_tasks_total{outcome="success"}' in text
    assert "asyncarch_worker_batch_size_count" in text
    assert 'asyncarch_worker_rebalances_total{event="assigned"} 1.0' in text
