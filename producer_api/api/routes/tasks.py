"""The v1 task resource: submit, status, result."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from producer_api.api.deps import BlobStoreDep, PublisherDep, SettingsDep, TaskStateDep
from producer_api.exceptions import TaskAlreadyFinished, TaskNotFound
from producer_api.models import (
    TASK_REQUEST_BODY,
    TaskAccepted,
    TaskResultView,
    TaskStatusView,
)
from producer_api.submission import accept_task, parse_json_task, submit_document_task
from stream_processors.state_machine import TERMINAL_STATES

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TaskId = Annotated[str, Path(description="Task id returned by POST /v1/tasks", max_length=64)]
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={413: PROBLEM, 415: PROBLEM, 422: PROBLEM, 503: PROBLEM},
    openapi_extra={"requestBody": TASK_REQUEST_BODY},
)
async def submit_task(
    request: Request,
    publisher: PublisherDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    response: Response,
) -> TaskAccepted:
    """Accept a task (JSON, or multipart with a document) once Kafka acknowledged it."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        accepted = await submit_document_task(request, publisher, store, settings.max_upload_bytes)
    else:
        task = parse_json_task(await request.body())
        callback = str(task.callback_url) if task.callback_url else None
        accepted = await accept_task(publisher, task.kind, task.inputs.model_dump(), callback)
    response.headers["Location"] = accepted.links.self
    return accepted


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
    if state["state"] not in TERMINAL_STATES:
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


@router.post(
    "/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskStatusView,
    responses={404: PROBLEM, 409: PROBLEM, 503: PROBLEM},
)
async def cancel_task(
    task_id: TaskId, task_state: TaskStateDep, publisher: PublisherDep
) -> TaskStatusView:
    """Cancel a task: a PENDING one never runs; 409 once it has finished."""
    state = await task_state.get(_checked(task_id))
    if state["state"] in TERMINAL_STATES:
        raise TaskAlreadyFinished(f"task {task_id} is already {state['state']}")
    await publisher.publish_cancellation(state["task_id"])
    return TaskStatusView(status=state["state"], **_without(state, "state", "result"))


def _checked(task_id: str) -> str:
    """Task ids are UUIDs: anything else was never issued, so it is unknown."""
    try:
        return str(uuid.UUID(task_id))
    except ValueError as exc:
        raise TaskNotFound(f"no task with id {task_id}") from exc


def _without(state: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in keys and k in TaskStatusView.model_fields}
