"""The real task-events agent, driven through Faust's ``test_context()`` without a broker.

The agent consumes one Faust topic over four names and picks the event type from
``event.message.topic``. ``AgentTestWrapper.put()`` names its message after the
agent's channel (``_get_strtopic``), which a topic of several names cannot give,
so ``send`` patches that lookup to the chosen name for the duration of one put.

The tables get a fresh ``memory://`` store each, set per table: setting
``app.conf.store`` after the app read it raises AlreadyConfiguredWarning, an
error under our warning filters. What would reach Kafka is captured instead: the
tables' changelog writes, the states published to the task-state topic, and the
webhook scheduling. The agent's ``applied_offsets`` is a fresh dict per test,
which also tells ``send`` when the agent has finished an event.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import defaultdict
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import pytest

from schemas.codec import codec_for
from schemas.exceptions import SchemaRegistryError
from schemas.records import task_status_record
from stream_processors.agents import task_events
from stream_processors.agents.task_events import apply_task_events
from stream_processors.app import app, topic_settings
from stream_processors.tables import expired_tasks, task_states, webhook_deliveries

REQUESTS, STATUS, RESULTS = topic_settings.requests, topic_settings.status, topic_settings.results
OUTPUT = {"similarity": 0.5, "embedding_a": [0.5, -0.25], "embedding_b": [0.25, 0.5]}


class Captured(SimpleNamespace):
    published: list[dict[str, Any]]
    changelog: list[tuple[str, str, Any]]
    webhooks: list[dict[str, Any] | None]
    applied: dict[tuple[str, int], int]


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Captured:
    """Memory tables, fresh for this test, and every broker-bound side effect recorded."""
    seen = Captured(published=[], changelog=[], webhooks=[], applied=defaultdict(lambda: -1))
    app.finalize()
    for table in (task_states, expired_tasks, webhook_deliveries):
        # Per table, not app.conf.store: that key was already read (a warning, an error here).
        monkeypatch.setattr(table, "_store", "memory://")
        monkeypatch.setattr(table, "_data", None)

        def send_changelog(
            partition: int | None, key: str, value: Any, _name: str = table.name, **_: Any
        ) -> SimpleNamespace:
            seen.changelog.append((_name, key, value))
            return SimpleNamespace(message=SimpleNamespace(partition=partition))

        monkeypatch.setattr(table, "send_changelog", send_changelog)

    async def publish_state_change(state: dict[str, Any], headers: Any = None) -> None:
        seen.published.append(state)

    monkeypatch.setattr(task_events, "publish_state_change", publish_state_change)
    monkeypatch.setattr(task_events, "schedule_deliveries", seen.webhooks.append)
    monkeypatch.setattr(task_events, "applied_offsets", seen.applied)
    app.flow_control.resume()
    return seen


async def send(agent: Any, seen: Captured, topic: str, value: bytes, task_id: str) -> None:
    """``agent.put()`` on the named topic; returns once the agent has finished the event."""
    with patch.object(agent, "_get_strtopic", return_value=topic):
        event = await agent.put(value, key=task_id.encode())
    # put() wakes when the stream hands the value over, before the agent's body ran.
    async with asyncio.timeout(5):
        while seen.applied[(topic, 0)] < event.message.offset:
            await asyncio.sleep(0.001)


def request(task_id: str) -> bytes:
    inputs = {"item_a": "TV", "item_b": "Samsung"}
    record = {"task_id": task_id, "kind": "similarity", "inputs": inputs, "submitted_at": 1_000}
    return codec_for("TaskRequest").encode(record)


def running(task_id: str, at: int = 2_000) -> bytes:
    return codec_for("TaskStatus").encode(task_status_record(task_id, "RUNNING", at, worker="w1"))


def result(task_id: str) -> bytes:
    record = {
        "task_id": task_id,
        "kind": "similarity",
        "output": OUTPUT,
        "model": {"name": "m", "revision": "r", "device": "cpu"},
        "attempt": 1,
        "worker": "w1",
        "duration_ms": 12.5,
        "completed_at": 3_000,
    }
    return codec_for("TaskResult").encode(record)


def new_task_id() -> str:
    return str(uuid.uuid4())


async def test_request_running_result_ends_in_success(captured: Captured) -> None:
    task_id = new_task_id()
    async with apply_task_events.test_context() as agent:
        await send(agent, captured, REQUESTS, request(task_id), task_id)
        await send(agent, captured, STATUS, running(task_id), task_id)
        await send(agent, captured, RESULTS, result(task_id), task_id)

    state = task_states[task_id]
    assert [h["state"] for h in state["history"]] == ["PENDING", "RUNNING", "SUCCESS"]
    assert state["result"]["output"] == OUTPUT
    assert (state["submitted_at"], state["updated_at"]) == (1_000, 3_000)
    assert [s["state"] for s in captured.published] == ["PENDING", "RUNNING", "SUCCESS"]
    assert captured.changelog == [("task-state", task_id, s) for s in captured.published]
    assert captured.webhooks[-1] == state


async def test_a_late_running_after_success_changes_nothing(captured: Captured) -> None:
    task_id = new_task_id()
    async with apply_task_events.test_context() as agent:
        await send(agent, captured, REQUESTS, request(task_id), task_id)
        await send(agent, captured, RESULTS, result(task_id), task_id)
        final, published = task_states[task_id], len(captured.published)
        await send(agent, captured, STATUS, running(task_id, at=4_000), task_id)

    assert task_states[task_id] == final and final["state"] == "SUCCESS"
    assert len(captured.published) == published == 2
    assert len(captured.changelog) == 2


async def test_an_undecodable_event_is_skipped_and_the_next_applied(
    captured: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    task_id = new_task_id()
    with caplog.at_level(logging.ERROR, logger=task_events.__name__):
        async with apply_task_events.test_context() as agent:
            await send(agent, captured, STATUS, b"not avro", task_id)
            await send(agent, captured, REQUESTS, request(task_id), task_id)

    assert [r.message for r in caplog.records] == ["undecodable event skipped"]
    assert caplog.records[0].topic == STATUS  # type: ignore[attr-defined]
    assert task_states[task_id]["state"] == "PENDING"
    assert [s["task_id"] for s in captured.published] == [task_id]


async def test_an_expired_task_is_not_brought_back(captured: Captured) -> None:
    task_id = new_task_id()
    expired_tasks.data[task_id] = 5_000
    async with apply_task_events.test_context() as agent:
        await send(agent, captured, REQUESTS, request(task_id), task_id)
        await send(agent, captured, STATUS, running(task_id), task_id)

    assert task_id not in task_states
    assert captured.published == captured.changelog == captured.webhooks == []


async def test_only_a_new_or_finished_task_is_looked_up_among_the_expired(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only finished tasks expire: the events of a task under way need no lookup."""
    task_id, lookups = new_task_id(), []
    contains = type(expired_tasks).__contains__

    def counted(table: Any, key: object) -> bool:
        if table is expired_tasks:
            lookups.append(key)
        return contains(table, key)

    monkeypatch.setattr(type(expired_tasks), "__contains__", counted)
    async with apply_task_events.test_context() as agent:
        await send(agent, captured, REQUESTS, request(task_id), task_id)  # new: looked up
        await send(agent, captured, STATUS, running(task_id), task_id)
        await send(agent, captured, RESULTS, result(task_id), task_id)
        assert lookups == [task_id]
        expired_tasks.data[task_id] = 5_000  # finished, and (as after a crash) also expired
        await send(agent, captured, STATUS, running(task_id, at=4_000), task_id)

    assert lookups == [task_id, task_id]
    assert [s["state"] for s in captured.published] == ["PENDING", "RUNNING", "SUCCESS"]


async def test_an_unavailable_registry_holds_the_event_until_it_answers(
    captured: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not skipped, not counted as applied while it waits: tried again in place."""
    decode, tries = task_events.to_task_event, []

    def registry_down_twice(*args: Any) -> Any:
        tries.append(captured.applied[(REQUESTS, 0)])
        if len(tries) <= 2:
            raise SchemaRegistryError("cannot fetch schema id 7: connection refused")
        return decode(*args)

    monkeypatch.setattr(task_events, "to_task_event", registry_down_twice)
    monkeypatch.setattr(task_events, "REGISTRY_RETRY_INITIAL_S", 0.01)
    task_id = new_task_id()
    async with apply_task_events.test_context() as agent:
        await send(agent, captured, REQUESTS, request(task_id), task_id)

    assert len(tries) == 3 and tries[-1] == tries[0]  # nothing applied past it meanwhile
    assert task_states[task_id]["state"] == "PENDING"
    assert [s["state"] for s in captured.published] == ["PENDING"]


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "asks the registry"])
async def test_a_registry_question_is_asked_off_the_event_loop(
    captured: Captured, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    """A registry that hangs takes its whole timeout to answer: asked on the event
    loop, it stalled every query of the worker. A question goes to a thread while
    the loop runs on; with everything cached, the event is decoded in place."""
    threads: list[str] = []

    def learn_slowly() -> None:
        threads.append(threading.current_thread().name)
        if not cached:
            time.sleep(0.3)  # a registry answering slowly

    monkeypatch.setattr(task_events, "state_schema_id_known", lambda: cached)
    monkeypatch.setattr(task_events, "learn_state_schema_id", learn_slowly)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task_id = new_task_id()
    async with apply_task_events.test_context() as agent:
        ticker = asyncio.create_task(tick())
        await send(agent, captured, REQUESTS, request(task_id), task_id)
        ticker.cancel()

    assert task_states[task_id]["state"] == "PENDING"
    on_loop = threads == [threading.main_thread().name]
    assert on_loop is cached, threads
    if not cached:
        assert ticks >= 10, "the event loop waited for the registry"
