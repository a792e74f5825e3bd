"""The Python client and ``asyncarch submit`` against the real pipeline."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from asyncarch.client import (
    AsyncarchClient,
    AsyncAsyncarchClient,
    ClientError,
    TaskNotFound,
)
from tests.stack import Pipeline

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE_RANK = {"PENDING": 0, "RUNNING": 1, "RETRYING": 1, "SUCCESS": 2}


def test_sync_client_submits_and_waits_for_success(pipeline: Pipeline) -> None:
    with AsyncarchClient(pipeline.base_url) as client:
        task = client.submit_similarity("TV", "Samsung")
        final = client.wait(task, timeout_s=60)
        result = client.result(task)
    assert task.status == "PENDING"
    assert final["status"] == "SUCCESS"
    assert result["task_id"] == task.task_id
    assert -1.0 <= result["output"]["similarity"] <= 1.0


async def test_async_client_submits_and_waits_for_success(pipeline: Pipeline) -> None:
    async with AsyncAsyncarchClient(pipeline.base_url) as client:
        task = await client.submit_similarity("a cat sits on the mat", "a dog lies on the rug")
        final = await client.wait(task.task_id, timeout_s=60)
        result = await client.result(task.task_id)
    assert final["status"] == "SUCCESS"
    assert -1.0 <= result["output"]["similarity"] <= 1.0


def test_status_changes_are_reported_in_lifecycle_order(pipeline: Pipeline) -> None:
    seen: list[str] = []
    with AsyncarchClient(pipeline.base_url) as client:
        task = client.submit("embed", {"texts": ["one", "two", "three"]})
        client.wait(task, timeout_s=60, on_status=lambda body: seen.append(body["status"]))
    assert seen[-1] == "SUCCESS", seen
    assert len(seen) >= 2 and seen[0] in ("PENDING", "RUNNING"), seen
    ranks = [LIFECYCLE_RANK[status] for status in seen]
    assert ranks == sorted(ranks), seen
    assert all(a != b for a, b in itertools.pairwise(seen)), seen


def test_unknown_task_raises_task_not_found(pipeline: Pipeline) -> None:
    unknown = str(uuid.uuid4())
    with AsyncarchClient(pipeline.base_url) as client:
        with pytest.raises(TaskNotFound) as caught:
            client.status(unknown)
        assert caught.value.status_code == 404
        assert caught.value.problem["status"] == 404
        with pytest.raises(TaskNotFound):
            client.result(unknown)


def test_invalid_input_raises_client_error_naming_the_field(pipeline: Pipeline) -> None:
    with AsyncarchClient(pipeline.base_url) as client, pytest.raises(ClientError) as caught:
        client.submit_similarity("TV", "")
    assert caught.value.status_code == 422
    assert "inputs.item_b" in caught.value.fields
    assert "inputs.item_b" in caught.value.detail


def test_cli_submit_wait_prints_the_result_json(pipeline: Pipeline) -> None:
    command = [sys.executable, "-m", "asyncarch.cli", "submit", "--item-a", "TV"]
    command += ["--item-b", "Samsung", "--wait", "--url", pipeline.base_url]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCESS"
    assert -1.0 <= result["output"]["similarity"] <= 1.0
    progress = done.stderr.splitlines()
    assert progress[0] == f"submitted {result['task_id']}"
    assert progress[-1].split()[-1] == "SUCCESS"


def test_cli_reports_a_refused_task_with_exit_2(pipeline: Pipeline) -> None:
    command = [sys.executable, "-m", "asyncarch.cli", "submit", "--kind", "embed"]
    command += ["--text", "", "--url", pipeline.base_url]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "422 Invalid request" in done.stderr
    assert "inputs.texts" in done.stderr


def test_cli_submits_a_document_and_prints_ranked_passages(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    document = tmp_path / "notes.md"
    document.write_text(
        "\n\n".join(["The canteen opens at noon.", "Cables are tested at high voltage."] * 5)
    )
    command = [sys.executable, "-m", "asyncarch.cli", "submit", "--file", str(document)]
    command += ["--query", "when is lunch?", "--top-k", "2", "--wait", "--url", pipeline.base_url]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kind"] == "document-search"
    assert "canteen" in result["output"]["passages"][0]["text"]


def test_sync_client_submits_a_document(pipeline: Pipeline, tmp_path: Path) -> None:
    document = tmp_path / "a.txt"
    document.write_text("Fibre carries light. Copper carries current.")
    with AsyncarchClient(pipeline.base_url) as client:
        task = client.submit_document(document, "optical", top_k=1)
        assert client.wait(task, timeout_s=60)["status"] == "SUCCESS"
        passages = client.result(task)["output"]["passages"]
    assert len(passages) == 1
