"""With Kafka unreachable, the API says so quickly and accepts nothing."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from asyncarch.supervisor import ServiceGroup
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration


def test_post_answers_503_within_the_timeout_when_no_broker_listens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    services = ServiceGroup(
        env={
            **__import__("os").environ,
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "API_PORT": str(port),
            "API_PUBLISH_TIMEOUT_S": "2",
            "API_PROCESSOR_URL": f"http://127.0.0.1:{free_port()}",
            "TOPIC_PREFIX": f"down-{uuid.uuid4().hex[:8]}",
        },
        log_dir=tmp_path,
    )
    services.start("api")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        started = time.monotonic()
        response = httpx.post(
            f"{url}/v1/tasks",
            timeout=30,
            json={"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}},
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert elapsed < 5, elapsed
        problem = response.json()
        assert problem["title"] == "Kafka unavailable"
        assert "task_id" not in problem
        assert response.headers["Retry-After"]
        assert httpx.get(f"{url}/healthz").status_code == 200
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"]["kafka"] is False
    finally:
        services.stop()
