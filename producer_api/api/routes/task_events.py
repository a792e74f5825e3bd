"""Server-Sent Events: every state change of a task, until it is terminal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path
from fastapi.responses import StreamingResponse

from producer_api.access import load_task
from producer_api.api.deps import TaskStateDep
from producer_api.security import Caller, CallerDep
from producer_api.task_state import TaskStateClient
from schemas.states import TERMINAL_STATES

__all__ = ["router"]

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
HEARTBEAT_S = 15.0


@router.get(
    "/{task_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 404: {}, 410: {}, 503: {}},
)
async def task_events(
    task_id: Annotated[str, Path(max_length=64)],
    task_state: TaskStateDep,
    caller: CallerDep,
    last_event_id: Annotated[int | None, Header()] = None,
) -> StreamingResponse:
    """Stream each state change as an SSE ``status`` event; closes after the terminal one.

    Delivery attempts recorded by then come as ``webhook`` or ``sink`` events.
    """
    state = await load_task(task_state, task_id, caller)
    stream = _status_events(task_state, state, caller, skip=(last_event_id or 0))
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _status_events(
    task_state: TaskStateClient, state: dict[str, Any], caller: Caller, skip: int
) -> AsyncIterator[str]:
    """History entries as SSE frames; ``id`` is the entry's position, for Last-Event-ID.

    Between frames it long-polls the processor for the next change, so a
    change is sent as soon as the table has it; a wait that ends without one
    sends a keep-alive comment.
    """
    sent = skip
    while True:
        for number, entry in enumerate(state["history"][sent:], start=sent + 1):
            yield _frame(number, state, entry)
            sent = number
        if state["state"] in TERMINAL_STATES and sent >= len(state["history"]):
            return
        seen = state["updated_at"]
        state = await load_task(task_state, state["task_id"], caller, HEARTBEAT_S, seen)
        if state["updated_at"] == seen and state["state"] not in TERMINAL_STATES:
            yield ": keep-alive\n\n"


def _frame(number: int, state: dict[str, Any], entry: dict[str, Any]) -> str:
    """A ``status`` event, or a ``webhook`` / ``sink`` event for a delivery attempt."""
    if entry["state"] in ("WEBHOOK", "SINK"):
        data = {"task_id": state["task_id"], **entry}
        event = entry["state"].lower()
        return f"id: {number}\nevent: {event}\ndata: {json.dumps(data)}\n\n"
    data = {
        "task_id": state["task_id"],
        "status": entry["state"],
        "attempt": entry["attempt"],
        "at": entry["at"],
        "progress": entry.get("progress"),
        "error": entry.get("error"),
        "terminal": entry["state"] in TERMINAL_STATES,
    }
    return f"id: {number}\nevent: status\ndata: {json.dumps(data)}\n\n"
