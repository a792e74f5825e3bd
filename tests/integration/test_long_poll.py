"""Long-poll of a task's state through the API, against the real processor.

No worker runs here, so a task stays PENDING until it is cancelled: the
cancellation is the change that must wake a waiting query.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.partitioner import murmur2

from asyncarch.client import AsyncarchClient
from asyncarch.config import KafkaSettings
from asyncarch.supervisor import ServiceGroup
from tests.helpers import NotYet, eventually
from tests.stack import TEST_PARTITIONS, Pipeline, free_port, launch_pipeline

pytestmark = pytest.mark.integration

SIMILARITY = {"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}}


@pytest.fixture(scope="module")
def idle(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """API and processor, no worker."""
    pipeline = launch_pipeline(kafka, tmp_path_factory.mktemp("idle"), names=("processor", "api"))
    yield pipeline
    pipeline.services.stop()


def _submit(client: httpx.Client) -> str:
    response = client.post("/v1/tasks", json=SIMILARITY)
    assert response.status_code == 202, response.text
    return str(response.json()["task_id"])


def _timed_get(client: httpx.Client, path: str, **params: object) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, params=params, timeout=60)
    return response, time.monotonic() - started


def queries_waiting(pipeline: Pipeline, port: int | None = None) -> float:
    """A Faust worker's gauge of long-polls waiting now (the pipeline's by default)."""
    port = port or int(pipeline.services.env["PROCESSOR_WEB_PORT"])
    text = httpx.get(f"http://127.0.0.1:{port}/metrics/", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("asyncarch_processor_queries_waiting"))
    return float(line.split(" ")[1])


class CancelWhileWaiting:
    """Cancels a task from another thread once a long-poll waits in the processor."""

    def __init__(self, pipeline: Pipeline, task_id: str, metrics_port: int | None = None) -> None:
        self._thread = threading.Thread(target=self._run, args=(pipeline, task_id))
        self._metrics_port = metrics_port
        self.saw_waiting = False

    def __enter__(self) -> CancelWhileWaiting:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(timeout=30)

    def _run(self, pipeline: Pipeline, task_id: str) -> None:
        deadline = time.monotonic() + 20
        while (
            not (waiting := queries_waiting(pipeline, self._metrics_port) >= 1)
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        self.saw_waiting = waiting
        url = f"{pipeline.base_url}/v1/tasks/{task_id}/cancel"
        httpx.post(url, timeout=30).raise_for_status()


def test_a_long_poll_on_a_task_that_does_not_move_answers_after_the_wait(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = _submit(client)
        # Longer than API_QUERY_TIMEOUT_S (10 s): the API's query timeout grows by the wait.
        status, status_s = _timed_get(client, f"/v1/tasks/{task_id}", wait=11)
        result, result_s = _timed_get(client, f"/v1/tasks/{task_id}/result", wait=1)
    assert status.status_code == 200, status.text
    assert status.json()["status"] == "PENDING"
    assert 11 <= status_s < 16, status_s
    assert result.status_code == 202 and result.json()["status"] == "PENDING"
    assert 1 <= result_s < 5, result_s


@pytest.mark.parametrize("wait", ["-1", "31", "soon"])
def test_a_wait_out_of_bounds_is_422_naming_it(idle: Pipeline, wait: str) -> None:
    with idle.client() as client:
        task_id = _submit(client)
        response = client.get(f"/v1/tasks/{task_id}", params={"wait": wait})
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["wait"]


def test_a_submit_whose_task_does_not_finish_within_its_wait_gets_202(idle: Pipeline) -> None:
    with idle.client() as client:
        started = time.monotonic()
        held = client.post("/v1/tasks", json=SIMILARITY, headers={"Prefer": "wait=1"})
        held_s = time.monotonic() - started
        ignored = client.post("/v1/tasks", json=SIMILARITY, headers={"Prefer": "wait=soon"})
        async_only = client.post("/v1/tasks", json=SIMILARITY, headers={"Prefer": "respond-async"})
        pending = client.get(f"/v1/tasks/{held.json()['task_id']}")
    assert held.status_code == 202, held.text  # no worker here: still PENDING after the wait
    assert held.headers["Preference-Applied"] == "wait=1" and held_s >= 0.9, held_s
    assert held.json()["status"] == "PENDING" and pending.json()["status"] == "PENDING"
    for answer in (ignored, async_only):  # not a wait it understands: answered at once
        assert answer.status_code == 202 and "Preference-Applied" not in answer.headers


def test_a_submit_waiting_for_a_processor_that_is_gone_still_gets_its_202(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    """The task was accepted before the wait began: losing the processor during the wait
    must not turn that into an error, or the client would submit it again."""
    pipeline = launch_pipeline(kafka, tmp_path, names=("processor", "api"))
    try:
        processor = pipeline.services.processes["processor"]
        processor.kill()
        processor.wait(10)
        with pipeline.client() as client:
            answer = client.post("/v1/tasks", json=SIMILARITY, headers={"Prefer": "wait=2"})
        assert answer.status_code == 202, answer.text
        task_id = answer.json()["task_id"]
        assert answer.headers["Location"] == f"/v1/tasks/{task_id}"
        assert (
            "a submit's wait for its result ended without one" in (tmp_path / "api.log").read_text()
        )
    finally:
        pipeline.services.stop()


def test_a_long_poll_answers_as_soon_as_the_task_is_terminal(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = _submit(client)
        with CancelWhileWaiting(idle, task_id) as cancel:
            response, elapsed = _timed_get(client, f"/v1/tasks/{task_id}", wait=25)
    assert cancel.saw_waiting
    assert response.status_code == 200
    assert response.json()["status"] == "CANCELLED"
    assert elapsed < 15, elapsed  # woken by the change, not by the 25 s bound


def test_a_long_poll_with_since_answers_at_the_next_change(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = _submit(client)
        seen = client.get(f"/v1/tasks/{task_id}").json()
        stale, stale_s = _timed_get(client, f"/v1/tasks/{task_id}", wait=25, since=0)
        with CancelWhileWaiting(idle, task_id) as cancel:
            changed, changed_s = _timed_get(
                client, f"/v1/tasks/{task_id}", wait=25, since=seen["updated_at"]
            )
    assert cancel.saw_waiting
    assert stale.json()["status"] == "PENDING" and stale_s < 5, stale_s
    assert changed.json()["status"] == "CANCELLED"
    assert changed.json()["updated_at"] != seen["updated_at"]
    assert changed_s < 15, changed_s


def test_sse_sends_the_change_a_long_poll_woke_up(idle: Pipeline) -> None:
    with idle.client() as client:
        task_id = _submit(client)
        events = []
        with (
            CancelWhileWaiting(idle, task_id) as cancel,
            client.stream("GET", f"/v1/tasks/{task_id}/events", timeout=30) as response,
        ):
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
    assert cancel.saw_waiting
    assert [event["status"] for event in events] == ["PENDING", "CANCELLED"]


def test_client_wait_reports_each_change_through_long_polls(idle: Pipeline) -> None:
    seen: list[str] = []
    with AsyncarchClient(idle.base_url) as client:
        task = client.submit_similarity("TV", "Samsung")
        with CancelWhileWaiting(idle, task.task_id) as cancel:
            started = time.monotonic()
            final = client.wait(task, timeout_s=60, on_status=lambda b: seen.append(b["status"]))
            elapsed = time.monotonic() - started
    assert cancel.saw_waiting
    assert final["status"] == "CANCELLED"
    assert seen == ["PENDING", "CANCELLED"]
    assert elapsed < 15, elapsed  # a long-poll's 20 s wait did not run out


async def test_pollers_beyond_a_connection_pool_all_wait_at_once(idle: Pipeline) -> None:
    """150 long-polls on one task all wait in the processor together (no pool of 100
    queues them), and one change answers them all."""
    pollers = 150
    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(base_url=idle.base_url, timeout=60, limits=limits) as client:
        task_id = (await client.post("/v1/tasks", json=SIMILARITY)).json()["task_id"]
        polls = [
            asyncio.create_task(client.get(f"/v1/tasks/{task_id}", params={"wait": 25}))
            for _ in range(pollers)
        ]

        def all_waiting() -> bool | NotYet:
            return (waiting := queries_waiting(idle)) >= pollers or NotYet(waiting)

        # In a thread, so that the event loop keeps serving the polls meanwhile.
        await asyncio.to_thread(eventually, all_waiting, 20, f"{pollers} polls waiting", 0.1)
        (await client.post(f"/v1/tasks/{task_id}/cancel")).raise_for_status()
        answers = await asyncio.wait_for(asyncio.gather(*polls), 15)
    assert {(a.status_code, a.json()["status"]) for a in answers} == {(200, "CANCELLED")}


def task_partition(task_id: str) -> int:
    """The partition the producers (Java murmur2) put a task on."""
    return (murmur2(task_id.encode()) & 0x7FFFFFFF) % TEST_PARTITIONS


def _owned_partitions(port: int) -> list[int]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/health/", timeout=2)
    except httpx.HTTPError:
        return []
    return list(response.json()["partitions"]) if response.status_code == 200 else []


def test_a_long_poll_forwarded_to_the_owner_keeps_its_wait(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    """Faust's table routing forwards the query string: a long-poll sent to the worker
    that does not own the task waits on the owner and is woken there."""
    pipeline = launch_pipeline(kafka, tmp_path, names=("processor", "api"))
    port_1 = int(pipeline.services.env["PROCESSOR_WEB_PORT"])
    port_2 = free_port()
    second = ServiceGroup(
        env={
            **pipeline.services.env,
            "PROCESSOR_WEB_PORT": str(port_2),
            "PROCESSOR_DATA_DIR": str(tmp_path / "processor-2-data"),
        },
        log_dir=tmp_path,
    )
    second.start("processor-2", verb="processor")
    try:

        def split() -> bool:
            assert second.first_exited() is None, "the second Faust worker exited"
            return bool(_owned_partitions(port_1) and _owned_partitions(port_2))

        eventually(split, 180, "the partitions split across two workers", 0.5)
        owned_by_2 = set(_owned_partitions(port_2))
        with pipeline.client() as client:
            task_id = next(
                t for t in iter(lambda: _submit(client), None) if task_partition(t) in owned_by_2
            )
            with CancelWhileWaiting(pipeline, task_id, metrics_port=port_2) as cancel:
                started = time.monotonic()
                response = httpx.get(
                    f"http://127.0.0.1:{port_1}/tasks/{task_id}/", params={"wait": 25}, timeout=60
                )
                elapsed = time.monotonic() - started
    finally:
        second.stop()
        pipeline.services.stop()
    assert cancel.saw_waiting  # the owner, not the worker asked, held the wait
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "CANCELLED"
    assert elapsed < 15, elapsed
