"""Applies every request, status and result event to the task-state table."""

from __future__ import annotations

import logging
from typing import Any

from schemas.exceptions import EventDecodeError
from stream_processors.agents.table_metrics import count_change
from stream_processors.app import app, topic_settings
from stream_processors.catch_up import applied_offsets
from stream_processors.delivery.dispatch import schedule_deliveries
from stream_processors.events import to_task_event
from stream_processors.metrics import STATE_CHANGES, TASK_LATENCY_SECONDS
from stream_processors.publish import Headers, publish_state_change
from stream_processors.state_machine import TERMINAL_STATES, TaskEvent, apply
from stream_processors.tables import expired_tasks, task_states
from stream_processors.topics import task_events_topic
from stream_processors.waiters import notify_changed

__all__ = ["apply_task_events"]

log = logging.getLogger(__name__)


@app.agent(task_events_topic)
async def apply_task_events(stream):  # type: ignore[no-untyped-def]
    """Fold each event into its task's state and publish the change; undecodable
    events are logged and skipped."""
    async for event in stream.events():
        message = event.message
        try:
            task_event = to_task_event(topic_settings, message.topic, event.value)
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


async def _store(task_event: TaskEvent, headers: Headers) -> None:
    if task_event.task_id in expired_tasks:
        # A late or replayed event of an expired task must not bring it back.
        return
    current = task_states.get(task_event.task_id)
    new_state = apply(current, task_event)
    if new_state is not None:
        task_states[task_event.task_id] = new_state
        count_change(task_event.task_id, current, new_state)
        notify_changed(task_event.task_id)
        _observe(new_state)
        await publish_state_change(new_state, headers)
        log.info("task state", extra={"task_id": task_event.task_id, "state": new_state["state"]})
    schedule_deliveries(new_state or current)


def _observe(state: dict[str, Any]) -> None:
    """Count the change; for a terminal one, the time since the request was accepted."""
    STATE_CHANGES.labels(state=state["state"]).inc()
    if state["state"] in TERMINAL_STATES and state["submitted_at"] and state["updated_at"]:
        seconds = max(0.0, (state["updated_at"] - state["submitted_at"]) / 1000)
        TASK_LATENCY_SECONDS.labels(state=state["state"]).observe(seconds)
