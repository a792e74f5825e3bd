"""Builders of the event records that more than one service writes."""

from __future__ import annotations

from typing import Any

__all__ = ["task_status_record"]


def task_status_record(
    task_id: str,
    state: str,
    occurred_at: int,
    *,
    attempt: int = 1,
    worker: str = "",
    progress: float | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A ``TaskStatus`` record (``task_status.avsc``), every field set.

    The workers write one per lifecycle change; the API writes a CANCELLED one
    (attempt 0, no worker) to the cancellations topic.
    """
    return {
        "task_id": task_id,
        "state": state,
        "attempt": attempt,
        "worker": worker,
        "progress": progress,
        "error": error,
        "occurred_at": occurred_at,
    }
