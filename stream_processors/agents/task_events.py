"""Applies every request, status and result event to the task-state table."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asyncarch.backoff import Backoff
from schemas.exceptions import EventDecodeError, SchemaRegistryError
from stream_processors.agents.table_metrics import count_change
from stream_processors.app import app, topic_settings
from stream_processors.catch_up import applied_offsets
from stream_processors.delivery.dispatch import schedule_deliveries
from stream_processors.events import event_codec, to_task_event
from stream_processors.metrics import STATE_CHANGES, TASK_LATENCY_SECONDS
from stream_processors.publish import (
    Headers,
    learn_state_schema_id,
    publish_state_change,
    state_schema_id_known,
)
from stream_processors.state_machine import TERMINAL_STATES, TaskEvent, apply
from stream_processors.tables import expired_tasks, task_states
from stream_processors.topics import task_events_topic
from stream_processors.waiters import notify_changed

__all__ = ["apply_task_events"]

log = logging.getLogger(__name__)
# Waits between tries while the schema registry is unavailable.
REGISTRY_RETRY_INITIAL_S = 0.5
REGISTRY_RETRY_MAX_S = 5.0


@app.agent(task_events_topic)
async def apply_task_events(stream):  # type: ignore[no-untyped-def]
    """Fold each event into its task's state and publish the change; undecodable
    events are logged and skipped. While the schema registry is unavailable the
    event is tried again in place: nothing after it is applied or committed."""
    async for event in stream.events():
        message = event.message
        try:
            task_event = await _decode(message.topic, event.value)
        except EventDecodeError as exc:
            log.error(
                "undecodable event skipped",
                extra={
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "error": str(exc),
                },
            )
        else:
            await _store(task_event, message.headers)
        applied_offsets[(message.topic, message.partition)] = message.offset


async def _decode(topic: str, value: bytes) -> TaskEvent:
    """The event of ``value``, once the registry has answered what it needs: its
    writer schema, and the task-state schema's id (so publishing cannot fail
    after the table changed). Raises EventDecodeError for a poison event.

    A question to the registry goes to a thread: a registry that hangs takes
    its whole timeout to answer, and on the event loop every query, timer and
    commit of this worker would wait with it."""
    backoff = Backoff(REGISTRY_RETRY_INITIAL_S, REGISTRY_RETRY_MAX_S)
    while True:
        try:
            if event_codec(topic_settings, topic).needs_registry(value) or not (
                state_schema_id_known()
            ):
                return await asyncio.to_thread(_decode_now, topic, value)
            return _decode_now(topic, value)
        except SchemaRegistryError as exc:
            wait_s = backoff.next_wait_s()
            log.warning(
                "schema registry unavailable; the event is tried again",
                extra={"topic": topic, "error": str(exc), "retry_in_s": wait_s},
            )
            await asyncio.sleep(wait_s)


def _decode_now(topic: str, value: bytes) -> TaskEvent:
    task_event = to_task_event(topic_settings, topic, value)
    learn_state_schema_id()
    return task_event


async def _store(task_event: TaskEvent, headers: Headers) -> None:
    current = task_states.get(task_event.task_id)
    if _maybe_expired(current) and task_event.task_id in expired_tasks:
        # A late or replayed event of an expired task must not bring it back.
        return
    new_state = apply(current, task_event)
    if new_state is not None:
        task_states[task_event.task_id] = new_state
        count_change(task_event.task_id, current, new_state)
        notify_changed(task_event.task_id, new_state)
        _observe(new_state)
        await publish_state_change(new_state, headers)
        # One INFO line per task, when it ends (as Celery's "succeeded in"); the
        # steps before it at DEBUG: three lines a task were 5% of the CPU under load.
        level = logging.INFO if new_state["state"] in TERMINAL_STATES else logging.DEBUG
        log.log(
            level, "task state", extra={"task_id": task_event.task_id, "state": new_state["state"]}
        )
    schedule_deliveries(new_state or current)


def _maybe_expired(current: dict[str, Any] | None) -> bool:
    """Whether the task may be among the expired: only finished tasks expire, so
    one under way (most events: RUNNING, its result) needs no second lookup."""
    return current is None or current["state"] in TERMINAL_STATES


def _observe(state: dict[str, Any]) -> None:
    """Count the change; for a terminal one, the time since the request was accepted."""
    STATE_CHANGES.labels(state=state["state"]).inc()
    if state["state"] in TERMINAL_STATES and state["submitted_at"] and state["updated_at"]:
        seconds = max(0.0, (state["updated_at"] - state["submitted_at"]) / 1000)
        TASK_LATENCY_SECONDS.labels(state=state["state"]).observe(seconds)
