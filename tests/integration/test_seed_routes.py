"""The seed's routes under /activedocuments/nexans/ (and its /prediction/ alias), driven as
the seed's README describes, with a test for each answer it documents.

Two pipelines: ``pipeline`` (with a worker; webhooks may reach 127.0.0.1) takes tasks to
SUCCESS; ``idle`` (no worker) keeps tasks PENDING until a test cancels them or injects the
worker's FAILED events.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from confluent_kafka import Producer

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for
from schemas.headers import event_headers
from tests.helpers import NotYet, eventually
from tests.stack import Pipeline, launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

SEED = "/activedocuments/nexans"
ALIAS = "/prediction"
DOCUMENT = "Lunch is served at noon.\n\nSubmarine cables cross the sea floor.\n\n" * 3
STATUS_TEXT = re.compile(r"Status of the Task (PENDING|RUNNING|RETRYING|SUCCESS|FAILED|CANCELLED)")
FINAL = ("Status of the Task SUCCESS", "Status of the Task FAILED")


@pytest.fixture(scope="module")
def pipeline(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """API, worker and processor; webhooks may go to this host (the callback test)."""
    result = launch_pipeline(
        kafka,
        tmp_path_factory.mktemp("seed"),
        PROCESSOR_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        PROCESSOR_WEBHOOK_BACKOFF_INITIAL_S="0.2",
    )
    yield result
    result.services.stop()


@pytest.fixture(scope="module")
def idle(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """API and processor without a worker: an accepted task stays PENDING."""
    result = launch_pipeline(kafka, tmp_path_factory.mktemp("idle"), names=("processor", "api"))
    yield result
    result.services.stop()


class CallbackReceiver(ThreadingHTTPServer):
    """Answers 200 to every POST and keeps its path and JSON body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CallbackHandler)
        self.received: list[tuple[str, dict]] = []

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _CallbackHandler(BaseHTTPRequestHandler):
    server: CallbackReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def submit_pair(client: httpx.Client, prefix: str = SEED, **fields: str) -> str:
    """The seed's form post; the task id it answered."""
    response = client.post(
        f"{prefix}/uploader/", data={"item_a": "TV", "item_b": "Samsung", **fields}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["task_id"])


def inject_worker_failure(pipeline: Pipeline, task_id: str, message: str) -> None:
    """The status events a worker emits when a task fails: RUNNING, then FAILED."""
    codec = codec_for("TaskStatus")
    producer = Producer(pipeline.kafka.producer())
    now = int(time.time() * 1000)
    error = {"type": "Injected", "message": message}
    for state, at, err in [("RUNNING", now, None), ("FAILED", now + 1, error)]:
        event = {"task_id": task_id, "state": state, "attempt": 1, "worker": "test"}
        producer.produce(
            pipeline.topics.status,
            key=task_id.encode(),
            value=codec.encode({**event, "error": err, "progress": None, "occurred_at": at}),
            headers=event_headers(codec.schema, task_id, "test"),
        )
    assert producer.flush(30) == 0


def poll_status(client: httpx.Client, url: str, timeout_s: float = 60.0) -> list[str]:
    """GET ``url`` until the seed's text reports a final state; every text seen, in order."""
    seen: list[str] = []

    def final() -> bool | NotYet:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert STATUS_TEXT.fullmatch(response.text), response.text
        if not seen or seen[-1] != response.text:
            seen.append(response.text)
        return response.text in FINAL or NotYet(seen)

    eventually(final, timeout_s, "a final status", 0.1)
    return seen


def result_output(client: httpx.Client, url: str) -> dict:
    """The seed's result text, parsed: "Result of the Task <output as JSON>"."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Result of the Task {"), response.text[:80]
    output: dict = json.loads(response.text.removeprefix("Result of the Task "))
    return output


@pytest.mark.parametrize("prefix", [SEED, ALIAS])
def test_the_seeds_flow_form_post_poll_status_read_result(pipeline: Pipeline, prefix: str) -> None:
    with pipeline.client() as client:
        response = client.post(f"{prefix}/uploader/", data={"item_a": "TV", "item_b": "Samsung"})
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert str(uuid.UUID(task_id)) == task_id
        seen = poll_status(client, f"{prefix}/task_status/{task_id}")
        output = result_output(client, f"{prefix}/task_result/{task_id}")
        v1 = client.get(f"/v1/tasks/{task_id}/result").json()
    assert seen[-1] == "Status of the Task SUCCESS", seen
    assert v1["kind"] == "similarity"
    assert output == v1["output"]
    assert 0.0 < output["similarity"] < 1.0
    assert len(output["embedding_a"]) == len(output["embedding_b"]) == 384


def test_paths_without_or_with_the_slash_and_the_seeds_multipart_form(pipeline: Pipeline) -> None:
    # base.html posted multipart/form-data; a browser sends an empty file part with no file.
    with pipeline.client() as client:
        response = client.post(
            f"{SEED}/uploader",
            data={"item_a": "a cat sits on the mat", "item_b": "a dog lies on the rug"},
            files={"file": ("", b"", "application/octet-stream")},
        )
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert poll_status(client, f"{SEED}/task_status/{task_id}/")[-1].endswith("SUCCESS")
        slashless = client.get(f"{SEED}/task_result/{task_id}").text
        assert client.get(f"{SEED}/task_result/{task_id}/").text == slashless
        assert client.get(f"/v1/tasks/{task_id}").json()["kind"] == "similarity"


def test_uploader_answers_200_with_the_task_id_and_its_links(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        body = client.post(f"{SEED}/uploader/", data={"item_a": "x", "item_b": "y"}).json()
    assert body["status"] == "PENDING"
    assert body["links"]["self"] == f"/v1/tasks/{body['task_id']}"


@pytest.mark.parametrize(
    ("fields", "best"),
    [
        ({"query": "undersea power links"}, "Submarine"),
        ({"item_a": "submarine", "item_b": "cable"}, "Submarine"),
        ({"item_a": "lunch", "item_b": "noon", "query": "undersea power links"}, "Submarine"),
        ({"item_a": "meal", "item_b": "midday", "query": "", "colour": "red"}, "Lunch"),
        ({"item_a": "", "item_b": "", "query": "undersea power links"}, "Submarine"),
    ],
    ids=["query", "items", "query-over-items", "blank-query-unknown-field", "blank-items"],
)
def test_uploader_with_a_document_ranks_its_passages(
    pipeline: Pipeline, fields: dict[str, str], best: str
) -> None:
    # A document is searched for the query, or with none for "<item_a> <item_b>".
    with pipeline.client() as client:
        response = client.post(
            f"{SEED}/uploader/",
            data=fields,
            files={"file": ("notes.txt", DOCUMENT.encode(), "text/plain")},
        )
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert poll_status(client, f"{SEED}/task_status/{task_id}")[-1].endswith("SUCCESS")
        output = result_output(client, f"{SEED}/task_result/{task_id}")
        assert client.get(f"/v1/tasks/{task_id}").json()["kind"] == "document-search"
    assert best in output["passages"][0]["text"]


def test_unknown_form_fields_are_ignored(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = submit_pair(client, colour="red", kind="embed", top_k="3")
        assert poll_status(client, f"{SEED}/task_status/{task_id}")[-1].endswith("SUCCESS")
        assert client.get(f"/v1/tasks/{task_id}").json()["kind"] == "similarity"


def test_uploader_with_a_callback_url_posts_the_result_there(
    pipeline: Pipeline, receiver: CallbackReceiver
) -> None:
    with pipeline.client() as client:
        task_id = submit_pair(client, callback_url=f"{receiver.base}/hook/{uuid.uuid4().hex}")
        assert poll_status(client, f"{SEED}/task_status/{task_id}")[-1].endswith("SUCCESS")
        output = result_output(client, f"{SEED}/task_result/{task_id}")
    eventually(lambda: receiver.received, 30, "a webhook", 0.1)
    ((path, body),) = receiver.received
    assert path.startswith("/hook/")
    assert (body["task_id"], body["status"]) == (task_id, "SUCCESS")
    assert body["output"] == output


@pytest.mark.parametrize("prefix", [SEED, ALIAS])
def test_a_pending_task_reads_pending_and_its_result_is_202(idle: Pipeline, prefix: str) -> None:
    with idle.client() as client:
        task_id = submit_pair(client, prefix)
        status = client.get(f"{prefix}/task_status/{task_id}")
        result = client.get(f"{prefix}/task_result/{task_id}")
    assert (status.status_code, status.text) == (200, "Status of the Task PENDING")
    assert status.headers["content-type"].startswith("text/plain")
    assert (result.status_code, result.text) == (202, "Result of the Task None")
    assert result.headers["content-type"].startswith("text/plain")
    assert result.headers["Retry-After"] == "1"


def test_a_cancelled_task_reads_cancelled_and_its_result_is_none(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = submit_pair(client)
        assert client.post(f"/v1/tasks/{task_id}/cancel").status_code == 202
        wait_for_state(client, task_id, {"CANCELLED"})
        status = client.get(f"{SEED}/task_status/{task_id}")
        result = client.get(f"{SEED}/task_result/{task_id}")
    assert (status.status_code, status.text) == (200, "Status of the Task CANCELLED")
    assert (result.status_code, result.text) == (200, "Result of the Task None")
    assert "Retry-After" not in result.headers


def test_a_failed_task_reads_failed_and_its_result_is_the_error(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = submit_pair(client)
        inject_worker_failure(idle, task_id, "model exploded on purpose")
        wait_for_state(client, task_id, {"FAILED"})
        status = client.get(f"{SEED}/task_status/{task_id}")
        result = client.get(f"{ALIAS}/task_result/{task_id}")
    assert (status.status_code, status.text) == (200, "Status of the Task FAILED")
    assert (result.status_code, result.text) == (
        200,
        "Result of the Task model exploded on purpose",
    )
    assert "Retry-After" not in result.headers


def test_echo_answers_the_seeds_text_with_or_without_the_slash(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        for path in (f"{SEED}/echo/", f"{SEED}/echo", f"{ALIAS}/echo/", f"{ALIAS}/echo"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.text == "Hello! FINALMENTE!"


def test_upload_page_is_served(pipeline: Pipeline) -> None:
    # The seed's install check visits /prediction/upload.
    with pipeline.client() as client:
        pages = [
            client.get(f"{prefix}/{path}")
            for prefix in (SEED, ALIAS)
            for path in ("upload/", "upload")
        ]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for name in ("item_a", "item_b", "file", "query"):
            assert f'name="{name}"' in page.text
        assert 'type="submit"' in page.text
        assert "/uploader/" in page.text and "/task_status/" in page.text
        assert 'id="api_key"' in page.text and '"X-API-Key"' in page.text


def test_openapi_lists_the_seed_routes_once(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
    seed_paths = sorted(p for p in paths if p.startswith((SEED, ALIAS)))
    assert seed_paths == sorted(
        f"{SEED}/{route}"
        for route in (
            "echo/",
            "upload/",
            "uploader/",
            "task_status/{task_id}",
            "task_result/{task_id}",
        )
    )


@pytest.mark.parametrize(
    ("request_kwargs", "status", "fields"),
    [
        ({"data": {"item_a": "TV"}}, 422, ["item_b"]),
        ({"data": {"item_a": "", "item_b": "Samsung"}}, 422, ["item_a"]),
        ({"data": {"item_a": "TV", "item_b": "x" * 10_001}}, 422, ["item_b"]),
        ({"data": {}}, 422, ["item_a", "item_b"]),
        ({"json": {"item_a": "TV", "item_b": "Samsung"}}, 415, []),
        ({"data": {"query": "q"}, "files": {"file": ("a.exe", b"MZ\x90")}}, 415, []),
        ({"files": {"file": ("notes.txt", b"text")}}, 422, ["query"]),
        (
            {"data": {"item_a": "TV", "item_b": "Samsung"}, "files": {"file": ("a.exe", b"MZ")}},
            415,
            [],
        ),
        (
            {
                "data": {"item_a": "TV", "item_b": "S"},
                "files": {"file": ("a.txt", b"\xff\xfe\x00")},
            },
            415,
            [],
        ),
        (
            {"data": {"item_a": "TV", "item_b": "S", "callback_url": "not a url"}},
            422,
            ["callback_url"],
        ),
        (
            {
                "data": {"query": "q"},
                "files": [("file", ("a.txt", b"a")), ("file", ("b.txt", b"b"))],
            },
            400,
            [],
        ),
    ],
    ids=[
        "missing",
        "empty",
        "too-long",
        "no-fields",
        "json",
        "exe-document",
        "no-query",
        "exe-document-with-items",
        "binary-text-document",
        "bad-callback-url",
        "two-files",
    ],
)
def test_bad_forms_get_a_problem_body(
    pipeline: Pipeline, request_kwargs: dict, status: int, fields: list[str]
) -> None:
    with pipeline.client() as client:
        response = client.post(f"{SEED}/uploader/", **request_kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert [e["field"] for e in problem.get("errors", [])] == fields


def test_unknown_task_ids_are_404(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        for task_id in (str(uuid.uuid4()), "not-a-task-id"):
            for route in ("task_status", "task_result"):
                response = client.get(f"{SEED}/{route}/{task_id}")
                assert client.get(f"{ALIAS}/{route}/{task_id}").status_code == 404
                assert response.status_code == 404, (route, task_id, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["status"] == 404
