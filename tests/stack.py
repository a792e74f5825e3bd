"""The real pipeline for tests: its services on a fresh topic set, and waits on tasks.

Shared by the integration and resilience tests (their fixtures live in each
folder's ``conftest.py``); test modules import these from here, never from a
``conftest``.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from asyncarch.blobstore import BlobSettings, BlobStore, open_store
from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.helpers import NotYet, eventually

__all__ = [
    "TEST_PARTITIONS",
    "UPLOAD_LIMIT",
    "Pipeline",
    "free_port",
    "launch_pipeline",
    "service_env",
    "wait_for_state",
    "wait_for_task",
    "wait_ready",
]

TEST_PARTITIONS = 3
UPLOAD_LIMIT = 256 * 1024


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Pipeline:
    """The three services running against one topic set."""

    base_url: str
    kafka: KafkaSettings
    topics: TopicSettings
    services: ServiceGroup
    log_dir: Path
    blob_url: str

    def blob_store(self) -> BlobStore:
        """The document store the services share."""
        return open_store(BlobSettings(url=self.blob_url))

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.log_dir.glob("*.log")
        )


def service_env(
    kafka: KafkaSettings, topics: TopicSettings, tag: str, **extra: str
) -> dict[str, str]:
    """Environment that points every service at this broker and topic set."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "TOPIC_PREFIX": topics.prefix,
        "TOPIC_PARTITIONS": str(topics.partitions),
        "WORKER_GROUP_ID": f"workers-{tag}",
        "WORKER_TORCH_THREADS": "1",
        "PROCESSOR_APP_ID": f"processor-{tag}",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_ready(url: str, services: ServiceGroup, timeout_s: float = 120.0) -> None:
    """Block until ``/readyz`` answers 200; fail if a service dies first."""

    def ready() -> bool:
        if (dead := services.first_exited()) is not None:
            raise AssertionError(f"service {dead} exited during start-up")
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200

    eventually(ready, timeout_s, "pipeline ready", 0.3, (httpx.HTTPError,))


def launch_pipeline(
    kafka: KafkaSettings,
    log_dir: Path,
    names: tuple[str, ...] = ("processor", "worker", "api"),
    **extra_env: str,
) -> Pipeline:
    """Start the named services on a fresh topic set; the API must become ready.

    ``extra_env`` adds variables or replaces these defaults (``BLOB_URL``, ...).
    """
    tag = uuid.uuid4().hex[:10]
    topics = TopicSettings(prefix=f"p-{tag}", partitions=TEST_PARTITIONS)
    ensure_topics(kafka, topics)
    api_port, web_port = free_port(), free_port()
    defaults = {
        "API_PORT": str(api_port),
        "API_PROCESSOR_URL": f"http://127.0.0.1:{web_port}",
        "PROCESSOR_WEB_PORT": str(web_port),
        "PROCESSOR_DATA_DIR": str(log_dir / "processor-data"),
        "BLOB_URL": (log_dir / "blobs").as_uri(),
        "API_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "WORKER_METRICS_PORT": str(free_port()),
    }
    env = service_env(kafka, topics, tag, **{**defaults, **extra_env})
    services = ServiceGroup(env=env, log_dir=log_dir)
    for name in names:
        services.start(name)
    result = Pipeline(
        f"http://127.0.0.1:{api_port}", kafka, topics, services, log_dir, env["BLOB_URL"]
    )
    try:
        wait_ready(result.base_url, services)
    except AssertionError as exc:
        services.stop()
        raise AssertionError(f"{exc}\n{result.logs()}") from exc
    return result


def wait_for_task(
    client: httpx.Client, task_id: str, done: Callable[[dict], bool], timeout_s: float = 60.0
) -> dict:
    """Poll a task's status body until ``done(body)``; fail with the last body."""

    def body_when_done() -> dict | NotYet:
        response = client.get(f"/v1/tasks/{task_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        return body if done(body) else NotYet(body)

    return eventually(body_when_done, timeout_s, f"task {task_id} done", 0.1)


def wait_for_state(
    client: httpx.Client, task_id: str, states: set[str], timeout_s: float = 60.0
) -> dict:
    """Poll a task until it reaches one of ``states``."""
    return wait_for_task(client, task_id, lambda body: body["status"] in states, timeout_s)
