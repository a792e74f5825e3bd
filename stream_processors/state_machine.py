"""The task lifecycle as an idempotent state machine.

``apply`` folds one event into a task's state. It is pure and order-tolerant:
a late or duplicate event never moves a task backwards, a terminal state is
final, and replaying any prefix of the events again yields the same state, so
the table is correct whatever Faust's delivery guarantee does on a rebalance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.states import (
    ALL_STATES,
    CANCELLED,
    FAILED,
    PENDING,
    RETRYING,
    RUNNING,
    SUCCESS,
    TERMINAL_STATES,
)

__all__ = ["ALL_STATES", "TERMINAL_STATES", "TaskEvent", "apply"]

_RANK = {PENDING: 0, RUNNING: 1, RETRYING: 1, SUCCESS: 2, FAILED: 2, CANCELLED: 2}
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class TaskEvent:
    """One decoded request, status or result event, reduced to what the state needs."""

    task_id: str
    state: str
    occurred_at: int
    attempt: int = 1
    request: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


def apply(current: dict[str, Any] | None, event: TaskEvent) -> dict[str, Any] | None:
    """The task's new state after ``event``, or None when the event changes nothing."""
    state = dict(current) if current else _blank(event.task_id)
    changed = _merge_request(state, event.request)
    if _moves_forward(current, event):
        _enter(state, event)
        changed = True
    return state if changed or current is None else None


def _blank(task_id: str) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "state": PENDING,
        "attempt": 0,
        "kind": None,
        "submitted_at": None,
        "updated_at": None,
        "callback_url": None,
        "deliver_to": None,
        "tenant": None,
        "request_sha256": None,
        "progress": None,
        "result": None,
        "error": None,
        "history": [],
    }


def _merge_request(state: dict[str, Any], request: dict[str, Any] | None) -> bool:
    """Fill in what only the request knows; it may arrive after a status event."""
    if request is None or state["submitted_at"] is not None:
        return False
    state.update(
        kind=request["kind"],
        submitted_at=request["submitted_at"],
        callback_url=request.get("callback_url"),
        deliver_to=request.get("deliver_to"),
        tenant=request.get("tenant"),
        request_sha256=request.get("request_sha256"),
    )
    if state["updated_at"] is None:
        state["updated_at"] = request["submitted_at"]
        state["history"] = [{"state": PENDING, "at": request["submitted_at"], "attempt": 0}]
    return True


def _moves_forward(current: dict[str, Any] | None, event: TaskEvent) -> bool:
    if event.state == PENDING:
        return False
    if current is None:
        return True
    state, attempt = current["state"], current["attempt"]
    if state in TERMINAL_STATES:
        return False
    rank, new_rank = _RANK[state], _RANK[event.state]
    if new_rank != rank:
        return new_rank > rank
    if event.attempt != attempt:
        return event.attempt > attempt
    if event.state != state:  # RUNNING -> RETRYING within one attempt
        return event.state == RETRYING
    return event.progress is not None and event.progress > (current["progress"] or 0.0)


def _enter(state: dict[str, Any], event: TaskEvent) -> None:
    state.update(
        state=event.state,
        attempt=max(event.attempt, state["attempt"]),
        updated_at=event.occurred_at,
        progress=event.progress,
    )
    if event.result is not None:
        state["result"] = event.result
    if event.error is not None:
        state["error"] = event.error
    entry = {"state": event.state, "at": event.occurred_at, "attempt": event.attempt}
    if event.error is not None:
        entry["error"] = event.error
    if event.progress is not None:
        entry["progress"] = event.progress
    state["history"] = [*state["history"], entry][-HISTORY_LIMIT:]
