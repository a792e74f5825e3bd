"""Documents go by claim check: uploaded, stored, searched by a worker, never in Kafka."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.helpers import make_pdf
from tests.stack import UPLOAD_LIMIT, Pipeline, wait_for_state

pytestmark = pytest.mark.integration

LINES = [
    "Medium voltage cables connect wind farms to the grid.",
    "The cafeteria serves lunch from noon until two.",
    "Fibre optic links carry data between data centres.",
    "Submarine power cables cross the sea floor between countries.",
]


def stored_files(pipeline: Pipeline) -> set[str]:
    root = Path(urlparse(pipeline.blob_url).path)
    return {p.name for p in root.iterdir()} if root.exists() else set()


def test_pdf_upload_round_trip_ranks_the_relevant_passage_first(pipeline: Pipeline) -> None:
    pdf = make_pdf([line for line in LINES for _ in range(12)])
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks",
            data={"query": "what is served at lunch?", "top_k": "3"},
            files={"file": ("notes.pdf", pdf, "application/pdf")},
        )
        assert response.status_code == 202, response.text
        task_id = response.json()["task_id"]
        state = wait_for_state(client, task_id, {"SUCCESS", "FAILED"})
        assert state["status"] == "SUCCESS", state
        result = client.get(f"/v1/tasks/{task_id}/result").json()
    assert result["kind"] == "document-search"
    passages = result["output"]["passages"]
    assert 1 <= len(passages) <= 3
    assert "cafeteria" in passages[0]["text"]
    assert [p["score"] for p in passages] == sorted((p["score"] for p in passages), reverse=True)


def test_markdown_upload_is_searched(pipeline: Pipeline) -> None:
    text = "# Notes\n\n" + "\n\n".join(LINES * 3)
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks",
            data={"query": "undersea electricity"},
            files={"file": ("notes.md", text.encode(), "text/markdown")},
        ).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
        top = client.get(f"/v1/tasks/{task_id}/result").json()["output"]["passages"][0]
    assert "Submarine" in top["text"] or "Fibre" in top["text"] or "cables" in top["text"]
    assert text[top["start"] : top["end"]].split()[0] in top["text"]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("image.png", b"\x89PNG\r\n", 415),
        ("fake.pdf", b"plain text pretending", 415),
        ("binary.txt", b"\xff\xfe\xfa\x00", 415),
        ("hidden.txt", b"%PDF-1.7 a pdf named txt", 415),
        ("empty.txt", b"", 415),
        ("huge.txt", b"a" * (UPLOAD_LIMIT + 1), 413),
    ],
)
def test_refused_documents_leave_no_task_and_no_file(
    pipeline: Pipeline, name: str, content: bytes, status: int
) -> None:
    before = stored_files(pipeline)
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks",
            data={"query": "q"},
            files={"file": (name, content, "application/octet-stream")},
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stored_files(pipeline) == before


@pytest.mark.parametrize(
    ("data", "files", "field"),
    [
        ({}, {"file": ("a.txt", b"text", "text/plain")}, "query"),
        ({"query": "q"}, None, "file"),
        ({"query": "q", "top_k": "0"}, {"file": ("a.txt", b"text", "text/plain")}, "top_k"),
    ],
)
def test_incomplete_uploads_are_422_naming_the_field(
    pipeline: Pipeline, data: dict, files: dict | None, field: str
) -> None:
    with pipeline.client() as client:
        response = client.post("/v1/tasks", data=data, files=files or {"x": ("", b"", "")})
    assert response.status_code == 422, response.text
    assert field in {error["field"] for error in response.json()["errors"]}


def test_a_long_document_reports_progress_while_running(pipeline: Pipeline) -> None:
    text = "\n\n".join(f"Paragraph {i}. " + " ".join(LINES) for i in range(150))
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks",
            data={"query": "grid connection"},
            files={"file": ("long.md", text.encode(), "text/markdown")},
        ).json()["task_id"]
        state = wait_for_state(client, task_id, {"SUCCESS", "FAILED"}, timeout_s=120)
    assert state["status"] == "SUCCESS"
    progress = [h["progress"] for h in state["history"] if "progress" in h]
    assert progress and all(0 < p < 1 for p in progress)
    assert progress == sorted(progress)
