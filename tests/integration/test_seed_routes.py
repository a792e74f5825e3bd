"""The seed's routes under /activedocuments/nexans/, driven as the seed's README describes."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

from tests.integration.conftest import Pipeline

pytestmark = pytest.mark.integration

SEED = "/activedocuments/nexans"
STATUS_TEXT = re.compile(r"Status of the Task (PENDING|RUNNING|RETRYING|SUCCESS|FAILED|CANCELLED)")
FINAL = ("Status of the Task SUCCESS", "Status of the Task FAILED")


def poll_status(client: httpx.Client, url: str, timeout_s: float = 60.0) -> list[str]:
    """GET ``url`` until the seed's text reports a final state; every text seen, in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = client.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert STATUS_TEXT.fullmatch(response.text), response.text
        if not seen or seen[-1] != response.text:
            seen.append(response.text)
        if response.text in FINAL:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"no final status within {timeout_s}s: {seen}")


def result_output(client: httpx.Client, url: str) -> dict:
    """The seed's result text, parsed: "Result of the Task <output as JSON>"."""
    response = client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("Result of the Task {"), response.text[:80]
    output: dict = json.loads(response.text.removeprefix("Result of the Task "))
    return output


def test_the_seeds_flow_form_post_poll_status_read_result(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        response = client.post(f"{SEED}/uploader/", data={"item_a": "TV", "item_b": "Samsung"})
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert str(uuid.UUID(task_id)) == task_id
        seen = poll_status(client, f"{SEED}/task_status/{task_id}")
        output = result_output(client, f"{SEED}/task_result/{task_id}")
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


def test_uploader_with_a_document_and_a_query_runs_a_document_search(pipeline: Pipeline) -> None:
    text = "Lunch is served at noon.\n\nSubmarine cables cross the sea floor.\n\n" * 3
    with pipeline.client() as client:
        response = client.post(
            f"{SEED}/uploader/",
            data={"query": "undersea power links"},
            files={"file": ("notes.txt", text.encode(), "text/plain")},
        )
        assert response.status_code == 200, response.text
        task_id = response.json()["task_id"]
        assert poll_status(client, f"{SEED}/task_status/{task_id}")[-1].endswith("SUCCESS")
        output = result_output(client, f"{SEED}/task_result/{task_id}")
    assert "Submarine" in output["passages"][0]["text"]


def test_echo_answers_the_seeds_text_with_or_without_the_slash(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        for path in (f"{SEED}/echo/", f"{SEED}/echo"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.text == "Hello! FINALMENTE!"


def test_upload_page_is_served(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        pages = [client.get(f"{SEED}/upload/"), client.get(f"{SEED}/upload")]
    for page in pages:
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for name in ("item_a", "item_b", "file", "query"):
            assert f'name="{name}"' in page.text
        assert 'type="submit"' in page.text
        assert "/uploader/" in page.text and "/task_status/" in page.text


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
                assert response.status_code == 404, (route, task_id, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["status"] == 404
