"""The v1 task resource: submit, status, result."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Response, status

from producer_api.api.deps import PublisherDep, SettingsDep, TaskStateDep
from producer_api.exceptions import TaskNotFound
from producer_api.metrics import TASKS_SUBMITTED
from producer_api.models import (
    TaskAccepted,
    TaskCreate,
    TaskLinks,
    TaskResultView,
    TaskStatusView,
)

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TaskId = Annotated[str, Path(description="Task id returned by POST /v1/tasks", max_length=64)]
PROBLEM = {"content": {"application/problem+json": {}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={422: PROBLEM, 503: PROBLEM},
)
async def submit_task(
    task: Annotated[TaskCreate, Body()],
    publisher: PublisherDep,
    settings: SettingsDep,
    response: Response,
) -> TaskAccepted:
    """Accept a task: answers 202 once Kafka has acknowledged the request event."""
    task_id = str(uuid.uuid4())
    partition, offset = await publisher.publish_request(
        {
            "task_id": task_id,
            "kind": task.kind,
            "inputs": task.inputs.model_dump(),
            "submitted_at": int(time.time() * 1000),
            "callback_url": str(task.callback_url) if task.callback_url else None,
            "tenant": None,
        }
    )
    TASKS_SUBMITTED.labels(kind=task.kind).inc()
    log.info(
        "task accepted",
        extra={"task_id": task_id, "kind": task.kind, "partition": partition, "offset": offset},
    )
    links = TaskLinks(self=f"/v1/tasks/{task_id}", result=f"/v1/tasks/{task_id}/result")
    response.headers["Location"] = links.self
    return TaskAccepted(task_id=task_id, status="PENDING", links=links)


@router.get("/{task_id}", response_model=TaskStatusView, responses={404: PROBLEM, 503: PROBLEM})
async def get_task(task_id: TaskId, task_state: TaskStateDep) -> TaskStatusView:
    """A task's lifecycle state."""
    state = await task_state.get(_checked(task_id))
    return TaskStatusView(status=state["state"], **_without(state, "state", "result"))


@router.get(
    "/{task_id}/result",
    response_model=TaskResultView,
    responses={202: {"model": TaskResultView}, 404: PROBLEM, 503: PROBLEM},
)
async def get_result(
    task_id: TaskId, task_state: TaskStateDep, response: Response
) -> TaskResultView:
    """A task's output; 202 with Retry-After while it is not finished."""
    state = await task_state.get(_checked(task_id))
    result = state.get("result") or {}
    if state["state"] not in ("SUCCESS", "FAILED", "CANCELLED"):
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = "1"
    return TaskResultView(
        task_id=task_id,
        kind=state["kind"],
        status=state["state"],
        output=result.get("output"),
        model=result.get("model"),
        error=state.get("error"),
    )


def _checked(task_id: str) -> str:
    """Task ids are UUIDs: anything else was never issued, so it is unknown."""
    try:
        return str(uuid.UUID(task_id))
    except ValueError as exc:
        raise TaskNotFound(f"no task with id {task_id}") from exc


def _without(state: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in keys and k in TaskStatusView.model_fields}
