"""Several Faust workers: any of them answers for any task, and a killed one recovers.

Queries go straight to each worker's web port, so a wrong table route shows up
as a 404 or a stale state rather than being hidden by the API's retries.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from aiokafka.partitioner import murmur2

from asyncarch.config import KafkaSettings
from asyncarch.supervisor import ServiceGroup
from tests.helpers import NotYet, eventually, submit_similarity_tasks, wait_healthy
from tests.stack import (
    TEST_PARTITIONS,
    Pipeline,
    free_port,
    launch_pipeline,
    wait_for_state,
)

pytestmark = pytest.mark.integration

TASKS = 12
FINAL = {"SUCCESS", "FAILED"}


def task_partition(task_id: str) -> int:
    """The partition the producers (Java murmur2) put a task on."""
    return (murmur2(task_id.encode()) & 0x7FFFFFFF) % TEST_PARTITIONS


def wait_for_split(ports: list[int], services: ServiceGroup, timeout_s: float = 180.0) -> dict:
    """Wait until the workers own disjoint partitions covering all; port -> partitions."""

    def split() -> dict[int, list[int]] | NotYet:
        owned = {port: wait_healthy(port, services)["partitions"] for port in ports}
        mine = [p for parts in owned.values() for p in parts]
        if sorted(mine) == list(range(TEST_PARTITIONS)) and all(owned.values()):
            return owned
        return NotYet(owned)

    return eventually(split, timeout_s, "partitions split across the workers", 0.5)


def query(port: int, task_id: str) -> httpx.Response:
    """Ask one Faust worker directly for a task."""
    return httpx.get(f"http://127.0.0.1:{port}/tasks/{task_id}/", timeout=15)


def start_second_processor(pipeline: Pipeline, log_dir: Path) -> tuple[ServiceGroup, int]:
    """Another Faust worker of the same app (same id and topics), on its own web port."""
    port = free_port()
    env = {
        **pipeline.services.env,
        "PROCESSOR_WEB_PORT": str(port),
        "PROCESSOR_DATA_DIR": str(log_dir / "processor-2-data"),
    }
    group = ServiceGroup(env=env, log_dir=log_dir)
    group.start("processor-2", verb="processor")
    return group, port


def test_each_worker_answers_for_tasks_the_other_owns(kafka: KafkaSettings, tmp_path: Path) -> None:
    pipeline = launch_pipeline(kafka, tmp_path)
    second, port_2 = start_second_processor(pipeline, tmp_path)
    port_1 = int(pipeline.services.env["PROCESSOR_WEB_PORT"])
    try:
        owned = wait_for_split([port_1, port_2], second)
        with pipeline.client() as client:
            task_ids = submit_similarity_tasks(client, TASKS, "routing")
            # Ids are random: with 12, one worker has no task of the other's partitions
            # in about 1 run of 130. Add tasks until each has one (bounded).
            for more in range(5):
                if all(any(task_partition(t) not in owned[p] for t in task_ids) for p in owned):
                    break
                task_ids += submit_similarity_tasks(client, TASKS, f"routing {more}")
            views = {t: wait_for_state(client, t, FINAL) for t in task_ids}
        answers = {(t, port): query(port, t) for t in task_ids for port in (port_1, port_2)}
        owned_after = {port: wait_healthy(port, second)["partitions"] for port in owned}
    finally:
        second.stop()
        pipeline.services.stop()

    assert owned_after == owned, "a rebalance happened during the test"
    for (task_id, port), response in answers.items():
        assert response.status_code == 200, (task_id, port, response.text)
        assert response.json()["state"] == views[task_id]["status"] == "SUCCESS"
        assert response.json()["task_id"] == task_id
    foreign = {
        port: [t for t in task_ids if task_partition(t) not in owned[port]] for port in owned
    }
    assert all(foreign.values()), f"each worker must have answered for the other: {owned}"


def test_a_killed_worker_rebuilds_its_table_from_the_changelog(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    pipeline = launch_pipeline(kafka, tmp_path)
    port = int(pipeline.services.env["PROCESSOR_WEB_PORT"])
    try:
        with pipeline.client() as client:
            task_ids = submit_similarity_tasks(client, TASKS, "before the crash")
            before = {t: wait_for_state(client, t, FINAL) for t in task_ids}
            recovery_s = _kill_and_restart_processor(pipeline, port)
            after = {t: client.get(f"/v1/tasks/{t}") for t in task_ids}
            direct = {t: query(port, t) for t in task_ids}
            (later,) = submit_similarity_tasks(client, 1, "after the crash")
            later_state = wait_for_state(client, later, FINAL)
    finally:
        pipeline.services.stop()

    print(f"\nFaust worker recovery after SIGKILL: {recovery_s:.2f}s from restart to /health/ 200")
    for task_id, response in after.items():
        assert response.status_code == 200, response.text
        assert response.json() == before[task_id]
        assert direct[task_id].json()["state"] == before[task_id]["status"]
    assert later_state["status"] == "SUCCESS"


def _kill_and_restart_processor(pipeline: Pipeline, port: int) -> float:
    """SIGKILL the Faust worker, start it again; seconds until /health/ answers 200."""
    process = pipeline.services.processes["processor"]
    process.kill()
    process.wait(10)
    started = time.monotonic()
    pipeline.services.start("processor")
    wait_healthy(port, pipeline.services)
    return time.monotonic() - started
