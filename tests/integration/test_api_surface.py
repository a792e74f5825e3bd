"""The v1 API's guarantees: SSE, idempotency, tenant isolation, backpressure."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from asyncarch.config import KafkaSettings
from producer_api.security import hash_api_key
from tests.helpers import NotYet, eventually, read_all
from tests.stack import Pipeline, launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}
KEYS = {"alice": "alice-secret-key", "bob": "bob-secret-key"}


def sse_events(client: httpx.Client, url: str, **headers: str) -> list[dict]:
    events = []
    with client.stream("GET", url, headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events


def test_sse_delivers_every_state_change_in_order_then_closes(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post("/v1/tasks", json=SIMILARITY).json()["task_id"]
        events = sse_events(client, f"/v1/tasks/{task_id}/events")
        replay = sse_events(client, f"/v1/tasks/{task_id}/events", **{"Last-Event-ID": "1"})
    assert [e["status"] for e in events] == ["PENDING", "RUNNING", "SUCCESS"]
    assert events[-1]["terminal"] is True and not any(e["terminal"] for e in events[:-1])
    assert [e["status"] for e in replay] == ["RUNNING", "SUCCESS"]


def test_idempotency_key_returns_the_same_task_and_publishes_nothing_new(
    pipeline: Pipeline,
) -> None:
    key = {"Idempotency-Key": f"order-{time.time_ns()}"}
    with pipeline.client() as client:
        first = client.post("/v1/tasks", json=SIMILARITY, headers=key)
        second = client.post("/v1/tasks", json=SIMILARITY, headers=key)
        other = client.post(
            "/v1/tasks", json={**SIMILARITY, "inputs": {"item_a": "a", "item_b": "b"}}, headers=key
        )
    assert first.status_code == second.status_code == 202
    task_id = first.json()["task_id"]
    assert second.json()["task_id"] == task_id
    assert second.headers["Idempotent-Replayed"] == "true"
    assert other.status_code == 409
    assert other.json()["title"].startswith("Idempotency-Key reused")
    requests = [
        m
        for m in read_all(pipeline.kafka, pipeline.topics.requests, 100, timeout_s=5)
        if m.key() == task_id.encode()
    ]
    assert len(requests) == 1


@pytest.fixture(scope="module")
def secured(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    keys = ",".join(f"{tenant}:{hash_api_key(key)}" for tenant, key in KEYS.items())
    pipeline = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("secured"),
        API_AUTH_ENABLED="true",
        API_KEYS=keys,
        API_RATE_LIMIT_PER_S="0.5",
        API_RATE_LIMIT_BURST="4",
    )
    yield pipeline
    pipeline.services.stop()


def auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


def test_requests_without_a_valid_key_are_401(secured: Pipeline) -> None:
    with secured.client() as client:
        missing = client.post("/v1/tasks", json=SIMILARITY)
        wrong = client.get("/v1/tasks/x", headers={"X-API-Key": "not-a-key"})
    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert missing.json()["title"] == "Unauthorized"


def test_a_task_is_invisible_to_other_tenants_on_every_route(secured: Pipeline) -> None:
    with secured.client() as client:
        task_id = client.post("/v1/tasks", json=SIMILARITY, headers=auth("alice")).json()["task_id"]
        client.headers.update(auth("alice"))
        wait_for_state(client, task_id, {"SUCCESS"})
        client.headers.clear()
        for method, path in [
            ("GET", ""),
            ("GET", "/result"),
            ("GET", "/events"),
            ("POST", "/cancel"),
        ]:
            foreign = client.request(method, f"/v1/tasks/{task_id}{path}", headers=auth("bob"))
            assert foreign.status_code == 404, (path, foreign.text)
        own = client.get(f"/v1/tasks/{task_id}/result", headers={"X-API-Key": KEYS["alice"]})
    assert own.status_code == 200 and own.json()["status"] == "SUCCESS"


def test_rate_limit_is_per_tenant_with_retry_after(secured: Pipeline) -> None:
    with secured.client() as client:
        codes = [
            client.post("/v1/tasks", json=SIMILARITY, headers=auth("bob")).status_code
            for _ in range(8)
        ]
        limited = client.post("/v1/tasks", json=SIMILARITY, headers=auth("bob"))
        other = client.post("/v1/tasks", json=SIMILARITY, headers=auth("alice"))
    assert 429 in codes and codes[0] == 202
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code == 202


def _unless(status: int, response: httpx.Response) -> httpx.Response | NotYet:
    """``response``, or "not yet" while its status is still ``status``."""
    return NotYet(status) if response.status_code == status else response


def test_new_tasks_get_503_while_too_many_wait_for_workers(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    pipeline = launch_pipeline(
        kafka,
        tmp_path,
        names=("processor", "api"),
        API_MAX_WAITING_TASKS="3",
        API_LAG_CHECK_INTERVAL_S="0.2",
    )
    try:
        with pipeline.client() as client:
            for _ in range(5):
                assert client.post("/v1/tasks", json=SIMILARITY).status_code == 202
            refused = eventually(
                lambda: _unless(202, client.post("/v1/tasks", json=SIMILARITY)), 30, "a refusal"
            )
            assert refused.status_code == 503
            assert refused.json()["title"] == "Too many tasks waiting"
            assert refused.headers["Retry-After"]
            pipeline.services.start("worker")
            eventually(
                lambda: _unless(503, client.post("/v1/tasks", json=SIMILARITY)),
                120,
                "admitted again",
                0.5,
            )
    finally:
        pipeline.services.stop()
