"""The public compacted task-state topic: replayed from offset 0 it rebuilds every task.

Also the example subscriber, ``asyncarch tail``, run as a real process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Producer

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for
from schemas.headers import event_headers
from schemas.topics import TopicSettings
from tests.helpers import NotYet, eventually, replay_task_states, submit_similarity_tasks
from tests.stack import Pipeline, wait_for_state

pytestmark = pytest.mark.integration

TASKS = 8
TAIL_ARGS = ("tail", "--state", "SUCCESS", "--from-beginning")
COMPARED = ("kind", "attempt", "submitted_at", "updated_at", "error")


def inject_failed_task(kafka: KafkaSettings, topics: TopicSettings) -> str:
    """A task whose worker events (with a duplicate) arrive without any request."""
    task_id = str(uuid.uuid4())
    codec = codec_for("TaskStatus")
    now = int(time.time() * 1000)
    error = {"type": "Injected", "message": "failed on purpose"}
    producer = Producer(kafka.producer())
    for state, attempt, at, err in [
        ("RUNNING", 1, now, None),
        ("RETRYING", 1, now + 1, error),
        ("RUNNING", 1, now, None),  # a late duplicate: changes nothing
        ("FAILED", 2, now + 2, error),
    ]:
        event = {"task_id": task_id, "state": state, "attempt": attempt, "worker": "test"}
        producer.produce(
            topics.status,
            key=task_id.encode(),
            value=codec.encode({**event, "error": err, "progress": None, "occurred_at": at}),
            headers=event_headers(codec.schema, task_id, "test"),
        )
    assert producer.flush(30) == 0
    return task_id


def wait_until_known(client: httpx.Client, task_id: str, timeout_s: float = 30.0) -> None:
    """For a task that never had a request: the API knows it once its events are applied."""
    eventually(
        lambda: client.get(f"/v1/tasks/{task_id}").status_code != 404,
        timeout_s,
        f"{task_id} known",
    )


def _matches(record: dict[str, Any] | None, view: dict[str, Any]) -> bool:
    return (
        record is not None
        and record["state"] == view["status"]
        and all(record[key] == view[key] for key in COMPARED)
    )


def test_replay_from_offset_zero_reproduces_every_final_state(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_ids = submit_similarity_tasks(client, TASKS, "replay")
        task_ids.append(inject_failed_task(pipeline.kafka, pipeline.topics))
        wait_until_known(client, task_ids[-1])
        views = {t: wait_for_state(client, t, {"SUCCESS", "FAILED"}) for t in task_ids}

    replayed = replay_task_states(
        pipeline.kafka,
        pipeline.topics.task_state,
        lambda latest: all(_matches(latest.get(t), v) for t, v in views.items()),
    )

    for task_id, view in views.items():
        record = replayed.get(task_id)
        assert record is not None, f"{task_id} missing from the task-state topic"
        assert (record["state"], *(record[k] for k in COMPARED)) == (
            view["status"],
            *(view[k] for k in COMPARED),
        )
    failed = replayed[task_ids[-1]]
    assert failed is not None and failed["state"] == "FAILED" and failed["attempt"] == 2
    assert failed["result"] is None
    for task_id in task_ids[:-1]:
        summary = replayed[task_id]["result"]  # type: ignore[index]
        assert -1.0 <= summary["similarity"] <= 1.0
        assert summary["model"].endswith("all-MiniLM-L6-v2")


def _tail_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def _wait_for_lines(path: Path, task_ids: Iterable[str], timeout_s: float = 30.0) -> list[str]:
    def lines_naming_all() -> list[str] | NotYet:
        lines = _tail_lines(path)
        return lines if all(any(t in line for line in lines) for t in task_ids) else NotYet(lines)

    return eventually(lines_naming_all, timeout_s, "tail printing every task")


def _exit_code(process: subprocess.Popen[str], out: Path, timeout_s: float = 30.0) -> int:
    """The exit code after Ctrl-C; if it does not stop, its threads' stacks (SIGUSR1)."""
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)
        time.sleep(1)  # for the stack dump to be written; the process is stuck anyway
        process.kill()
        process.wait()
        raise AssertionError(f"tail ignored Ctrl-C for {timeout_s} s:\n{out.read_text()}") from None


def test_tail_prints_success_changes_and_stops_on_ctrl_c(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    with pipeline.client() as client:
        earlier = submit_similarity_tasks(client, 2, "before tail")
        for task_id in earlier:
            wait_for_state(client, task_id, {"SUCCESS"})
        out = tmp_path / "tail.out"
        with out.open("w") as sink:
            tail = subprocess.Popen(
                [sys.executable, "-m", "asyncarch.cli", *TAIL_ARGS],
                env=pipeline.services.env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            _wait_for_lines(out, earlier)  # replayed from offset 0
            later = submit_similarity_tasks(client, 2, "while tailing")
            lines = _wait_for_lines(out, later)  # followed live
        finally:
            tail.send_signal(signal.SIGINT)
            code = _exit_code(tail, out)
    assert code == 0, out.read_text()
    assert all(" SUCCESS " in line and "similarity=" in line for line in lines), lines
    assert "Traceback" not in out.read_text()
