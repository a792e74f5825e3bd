"""Loading a task on behalf of a caller: unknown and foreign tasks look the same."""

from __future__ import annotations

import uuid
from typing import Any

from producer_api.exceptions import TaskNotFound
from producer_api.security import Caller
from producer_api.task_state import TaskStateClient

__all__ = ["load_task"]


async def load_task(
    task_state: TaskStateClient,
    task_id: str,
    caller: Caller,
    wait_s: float = 0.0,
    since: int | None = None,
) -> dict[str, Any]:
    """The task's state if the caller may see it; TaskNotFound otherwise.

    ``wait_s`` and ``since`` long-poll as :meth:`TaskStateClient.get`.

    Task ids are UUIDs: anything else was never issued. Another tenant's task
    answers exactly like an unknown one, so ids cannot be probed.
    """
    try:
        canonical = str(uuid.UUID(task_id))
    except ValueError as exc:
        raise TaskNotFound(f"no task with id {task_id}") from exc
    state = await task_state.get(canonical, wait_s, since)
    if not caller.owns(state.get("tenant")):
        raise TaskNotFound(f"no task with id {task_id}")
    return state
