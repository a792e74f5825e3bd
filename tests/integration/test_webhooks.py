"""Webhooks through the real pipeline, to a real HTTP receiver on 127.0.0.1.

The receiver's answer depends on the first segment of the callback's path:
``ok`` 200; ``flaky`` 500 twice, then 200; ``fail`` always 500; ``hang`` holds
the request until the module ends; ``gate`` 500 until the test opens it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from asyncarch.client import WebhookSignatureError, verify_webhook_signature
from asyncarch.config import KafkaSettings
from tests.helpers import NotYet, eventually, wait_healthy
from tests.stack import Pipeline, launch_pipeline, wait_for_state, wait_for_task

pytestmark = pytest.mark.integration

SECRET = "integration-webhook-secret"
TIMEOUT_S = 8.0
BACKOFF_MAX_S = 1.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver(ThreadingHTTPServer):
    """Records every webhook it gets and answers as its path says."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.gate_open = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def status_for(self, path: str) -> int:
        kind = path.split("/")[1]
        if kind == "hang":
            self.release.wait(60)
            return 500
        seen = len(self.to(path))
        answers = {
            "ok": 200,
            "flaky": 500 if seen <= 2 else 200,
            "fail": 500,
            "gate": 200 if self.gate_open.is_set() else 500,
        }
        return answers[kind]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            self.server.received.append(Received(self.path, dict(self.headers), body, time.time()))
        try:
            self.send_response(self.server.status_for(self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()
        except ConnectionError:
            pass  # the processor gave up waiting (its timeout)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hooked(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The pipeline with webhooks allowed to 127.0.0.1 only, and short retry times."""
    pipeline = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("webhooks"),
        PROCESSOR_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        PROCESSOR_WEBHOOK_SECRET=SECRET,
        PROCESSOR_WEBHOOK_RETRY_FOR_S="60",
        PROCESSOR_WEBHOOK_BACKOFF_INITIAL_S="0.2",
        PROCESSOR_WEBHOOK_BACKOFF_MAX_S=str(BACKOFF_MAX_S),
        PROCESSOR_WEBHOOK_TIMEOUT_S=str(TIMEOUT_S),
    )
    yield pipeline
    pipeline.services.stop()


def submit(client: httpx.Client, callback_url: str) -> str:
    body = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}
    response = client.post("/v1/tasks", json={**body, "callback_url": callback_url})
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def wait_for_webhook(
    client: httpx.Client, task_id: str, statuses: set[str], timeout_s: float = 60.0
) -> dict:
    """Poll a task until its webhook delivery is in one of ``statuses``."""
    return wait_for_task(
        client,
        task_id,
        lambda body: bool(body.get("webhook")) and body["webhook"]["status"] in statuses,
        timeout_s,
    )


def webhook_entries(body: dict) -> list[dict]:
    return [entry for entry in body["history"] if entry["state"] == "WEBHOOK"]


def test_a_finished_task_posts_a_signed_result(hooked: Pipeline, receiver: Receiver) -> None:
    path = f"/ok/{uuid.uuid4().hex}"
    with hooked.client() as client:
        task_id = submit(client, receiver.base + path)
        body = wait_for_webhook(client, task_id, {"delivered"})
    (hit,) = receiver.to(path)
    verify_webhook_signature(SECRET, hit.body, hit.headers["Asyncarch-Signature"])
    with pytest.raises(WebhookSignatureError):
        verify_webhook_signature("wrong-secret", hit.body, hit.headers["Asyncarch-Signature"])
    payload = json.loads(hit.body)
    assert (payload["task_id"], payload["status"], payload["type"]) == (
        task_id,
        "SUCCESS",
        "task.succeeded",
    )
    assert 0 < payload["output"]["similarity"] < 1
    assert payload["finished_at"] == body["updated_at"]
    assert hit.headers["Asyncarch-Delivery"] == body["webhook"]["delivery_id"] == payload["id"]
    assert hit.headers["Content-Type"] == "application/json"
    (entry,) = webhook_entries(body)
    assert (entry["outcome"], entry["status_code"], entry["attempt"]) == ("delivered", 200, 1)


def test_500_twice_then_200_is_three_attempts_and_no_more(
    hooked: Pipeline, receiver: Receiver
) -> None:
    path = f"/flaky/{uuid.uuid4().hex}"
    with hooked.client() as client:
        task_id = submit(client, receiver.base + path)
        body = wait_for_webhook(client, task_id, {"delivered"})
        # Not a wait for a condition: a window in which a further retry, if any, would happen.
        time.sleep(3 * BACKOFF_MAX_S)
        later = client.get(f"/v1/tasks/{task_id}").json()
    hits = receiver.to(path)
    assert len(hits) == 3
    assert len({h.headers["Asyncarch-Delivery"] for h in hits}) == 1
    for hit in hits:
        verify_webhook_signature(SECRET, hit.body, hit.headers["Asyncarch-Signature"])
    entries = webhook_entries(body)
    assert [(e["attempt"], e["outcome"], e["status_code"]) for e in entries] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "delivered", 200),
    ]
    assert entries[0]["next_attempt_at"] <= entries[1]["at"]
    assert entries[0]["error"] == {"type": "HTTPStatus", "message": "HTTP 500"}
    assert body["webhook"] == {**body["webhook"], "attempts": 3, "next_attempt_at": None}
    assert webhook_entries(later) == entries


def test_a_private_address_is_refused_before_any_connection(
    hooked: Pipeline, receiver: Receiver
) -> None:
    # The IPv4-mapped form of 127.0.0.1 reaches the receiver if connected to:
    # 127.0.0.1/32 does not cover it, so it must be refused, and nothing arrives.
    mapped = f"/ok/{uuid.uuid4().hex}"
    mapped_url = f"http://[::ffff:127.0.0.1]:{receiver.server_address[1]}{mapped}"
    with hooked.client() as client:
        private = submit(client, "http://10.0.0.1/hook")
        loopback = submit(client, mapped_url)
        private_body = wait_for_webhook(client, private, {"refused"})
        loopback_body = wait_for_webhook(client, loopback, {"refused"})
    (entry,) = webhook_entries(private_body)
    assert entry["outcome"] == "refused" and "status_code" not in entry
    assert entry["error"] == {
        "type": "WebhookRefused",
        "message": "callback host 10.0.0.1 refused: 10.0.0.1 is a private address",
    }
    (entry,) = webhook_entries(loopback_body)
    assert "(127.0.0.1) is a loopback address" in entry["error"]["message"]
    assert private_body["status"] == "SUCCESS"
    assert receiver.to(mapped) == []


def test_a_failing_callback_does_not_delay_other_tasks(
    hooked: Pipeline, receiver: Receiver
) -> None:
    hanging = [f"/hang/{uuid.uuid4().hex}" for _ in range(4)]
    failing = f"/fail/{uuid.uuid4().hex}"
    ok = f"/ok/{uuid.uuid4().hex}"
    with hooked.client() as client:
        stuck = [submit(client, receiver.base + path) for path in hanging]
        submit(client, receiver.base + failing)
        eventually(
            lambda: all(receiver.to(path) for path in [*hanging, failing]),
            30,
            "an attempt at every hanging and failing callback",
            0.1,
        )
        first_hang = min(receiver.to(path)[0].at for path in hanging)
        task_id = submit(client, receiver.base + ok)
        finished = wait_for_state(client, task_id, {"SUCCESS"})
        wait_for_webhook(client, task_id, {"delivered"}, timeout_s=TIMEOUT_S)
        timed_out = _wait_for_outcome(client, stuck[0], "Timeout", TIMEOUT_S + 10)
    (hit,) = receiver.to(ok)
    assert hit.at - finished["updated_at"] / 1000 < 3.0
    # Delivered while the four hanging attempts were still waiting for an answer.
    assert hit.at - first_hang < TIMEOUT_S
    assert (timed_out["outcome"], timed_out["attempt"]) == ("retrying", 1)


def test_pending_deliveries_resume_after_a_processor_crash(
    hooked: Pipeline, receiver: Receiver
) -> None:
    path = f"/gate/{uuid.uuid4().hex}"
    port = int(hooked.services.env["PROCESSOR_WEB_PORT"])
    with hooked.client() as client:
        task_id = submit(client, receiver.base + path)
        _wait_for_attempts(client, task_id, 2)
        _wait_for_changelog_attempts(hooked, task_id, 2)
        process = hooked.services.processes["processor"]
        process.kill()
        process.wait(10)
        before_restart = len(receiver.to(path))
        hooked.services.start("processor")
        wait_healthy(port, hooked.services)
        receiver.gate_open.set()
        body = wait_for_webhook(client, task_id, {"delivered"})
    entries = webhook_entries(body)
    assert [e["outcome"] for e in entries[:2]] == ["retrying", "retrying"]
    assert entries[-1]["outcome"] == "delivered"
    assert [e["attempt"] for e in entries] == list(range(1, len(entries) + 1))
    assert len(receiver.to(path)) > before_restart >= 2


def test_outcomes_are_counted_in_the_processor_metrics(
    hooked: Pipeline, receiver: Receiver
) -> None:
    before = _webhook_metrics(hooked)
    with hooked.client() as client:
        wait_for_webhook(client, submit(client, receiver.base + "/ok/m"), {"delivered"})
        wait_for_webhook(client, submit(client, "http://192.168.1.1/m"), {"refused"})
    after = _webhook_metrics(hooked)
    assert after["delivered"] >= before["delivered"] + 1
    assert after["refused"] >= before["refused"] + 1
    assert set(after) >= {"delivered", "retrying", "failed", "refused"}


def _webhook_metrics(pipeline: Pipeline) -> dict[str, float]:
    port = pipeline.services.env["PROCESSOR_WEB_PORT"]
    response = httpx.get(f"http://127.0.0.1:{port}/metrics/", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    prefix = 'asyncarch_processor_webhook_attempts_total{outcome="'
    counts = {}
    for line in response.text.splitlines():
        if line.startswith(prefix):
            labels, value = line.rsplit(" ", 1)
            counts[labels[len(prefix) : -2]] = float(value)
    return counts


def _wait_for_attempts(client: httpx.Client, task_id: str, count: int) -> dict:
    def body_with_attempts() -> dict | NotYet:
        body = client.get(f"/v1/tasks/{task_id}").json()
        return body if len(webhook_entries(body)) >= count else NotYet(body)

    return eventually(body_with_attempts, 30, f"{count} webhook attempts of {task_id}", 0.1)


def _wait_for_outcome(client: httpx.Client, task_id: str, error: str, timeout_s: float) -> dict:
    def entry_with_error() -> dict | None:
        body = client.get(f"/v1/tasks/{task_id}").json()
        failed = [e for e in webhook_entries(body) if e.get("error", {}).get("type") == error]
        return failed[0] if failed else None

    return eventually(entry_with_error, timeout_s, f"a {error} attempt of {task_id}")


def _wait_for_changelog_attempts(pipeline: Pipeline, task_id: str, count: int) -> None:
    """Until the deliveries changelog on the broker holds ``count`` attempts of ``task_id``."""
    app_id = pipeline.services.env["PROCESSOR_APP_ID"]
    topic = f"{app_id}-webhook-deliveries-changelog"
    consumer = Consumer(
        pipeline.kafka.librdkafka(
            **{"group.id": f"changelog-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
    )
    partitions = range(pipeline.topics.partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    recorded = {"attempts": 0}

    def attempts_on_broker() -> bool:
        for message in consumer.consume(100, timeout=0.5):
            if not message.error() and message.key() == task_id.encode() and message.value():
                recorded["attempts"] = json.loads(message.value())["webhook"]["attempt_count"]
        return recorded["attempts"] >= count

    try:
        eventually(attempts_on_broker, 30, f"{count} attempts of {task_id} in {topic}", 0)
    finally:
        consumer.close()
