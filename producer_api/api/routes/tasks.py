"""The v1 task resource: submit, status, result."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response, status

from producer_api.access import load_task
from producer_api.api.deps import (
    AdmissionDep,
    BlobStoreDep,
    CallerDep,
    PublisherDep,
    SettingsDep,
    SubmitterDep,
    TaskStateDep,
)
from producer_api.exceptions import (
    ProcessorUnavailable,
    TaskAlreadyFinished,
    TaskExpired,
    TaskNotFound,
)
from producer_api.models import (
    TASK_REQUEST_BODY,
    TaskAccepted,
    TaskResultView,
    TaskStatusView,
)
from producer_api.prefer import preferred_wait_s
from producer_api.problems import PROBLEM
from producer_api.security import Caller
from producer_api.submission import Submission, parse_json_task, read_document_form
from producer_api.task_state import TaskStateClient
from schemas.states import TERMINAL_STATES

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TaskId = Annotated[str, Path(description="Task id returned by POST /v1/tasks", max_length=64)]
MAX_WAIT_S = 30.0
WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description="Long-poll: answer as soon as the task is terminal (SUCCESS, FAILED, "
        f"CANCELLED), or after this many seconds with its state then (0 to {MAX_WAIT_S:g}; "
        "422 outside). 0 answers at once.",
    ),
]
SinceMs = Annotated[
    int | None,
    Query(
        description="With wait: the updated_at (epoch ms) of the state you already have; "
        "answer as soon as the task changes from it, not only when it is terminal.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskAccepted,
    responses={
        200: {
            "model": TaskResultView,
            "description": "With `Prefer: wait=S`: the task finished within S seconds; its "
            "result, as `GET /v1/tasks/{id}/result` answers it",
        },
        400: PROBLEM,
        401: PROBLEM,
        409: PROBLEM,
        410: PROBLEM,
        413: PROBLEM,
        415: PROBLEM,
        422: PROBLEM,
        429: PROBLEM,
        503: PROBLEM,
    },
    openapi_extra={"requestBody": TASK_REQUEST_BODY},
)
async def submit_task(
    request: Request,
    caller: AdmissionDep,
    submitter: SubmitterDep,
    settings: SettingsDep,
    store: BlobStoreDep,
    response: Response,
    task_state: TaskStateDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    prefer: Annotated[
        str | None,
        Header(
            max_length=1024,
            description="RFC 7240. `wait=S` (0 to 30 seconds): once the task is accepted, "
            "hold the answer until it is terminal (200 with its result) or S seconds have "
            "passed (202, as without it). `Preference-Applied: wait=S` says it was honoured; "
            "other preferences, and a wait that is not a number, are ignored.",
        ),
    ] = None,
) -> Any:
    """Accept a task (JSON, or multipart with a document) once Kafka acknowledged it;
    with ``Prefer: wait=S``, answer with its result if it finishes within S seconds."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form, inputs = await read_document_form(request, store, settings.max_upload_bytes)
        submission = Submission(
            "document-search",
            inputs,
            _url(form.callback_url),
            caller.tenant,
            idempotency_key,
            form.deliver_to,
        )
        accepted, replayed = await submitter.accept_document(submission, store)
    else:
        task = parse_json_task(await request.body())
        submission = Submission(
            task.kind,
            task.inputs.model_dump(),
            _url(task.callback_url),
            caller.tenant,
            idempotency_key,
            task.deliver_to,
        )
        accepted, replayed = await submitter.accept(submission)
    response.headers["Location"] = accepted.links.self
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    wait_s = preferred_wait_s(prefer, MAX_WAIT_S)
    if wait_s is None:
        return accepted
    response.headers["Preference-Applied"] = f"wait={wait_s:g}"
    finished = await _finished_within(task_state, accepted.task_id, caller, wait_s)
    if finished is None:
        return accepted
    return Response(
        _result_view(finished).model_dump_json(),
        status.HTTP_200_OK,
        # What was set above (Location, ...); not the placeholder's Content-Length.
        headers={k: v for k, v in response.headers.items() if k != "content-length"},
        media_type="application/json",
    )


async def _finished_within(
    task_state: TaskStateClient, task_id: str, caller: Caller, wait_s: float
) -> dict[str, Any] | None:
    """The task's state if it is terminal within ``wait_s``; None if it is not, or if
    its state cannot be read now: the task is accepted either way, and the 202 tells
    the client where to ask again."""
    try:
        state = await load_task(task_state, task_id, caller, wait_s)
    except (ProcessorUnavailable, TaskNotFound, TaskExpired) as exc:
        log.warning(
            "a submit's wait for its result ended without one; answered 202",
            extra={"task_id": task_id, "error": str(exc)},
        )
        return None
    return state if state["state"] in TERMINAL_STATES else None


@router.get(
    "/{task_id}",
    response_model=TaskStatusView,
    responses={404: PROBLEM, 410: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def get_task(
    task_id: TaskId,
    task_state: TaskStateDep,
    caller: CallerDep,
    wait: WaitSeconds = 0.0,
    since: SinceMs = None,
) -> TaskStatusView:
    """A task's lifecycle state; ``?wait=S`` long-polls until it is terminal."""
    return _status_view(await load_task(task_state, task_id, caller, wait, since))


@router.get(
    "/{task_id}/result",
    response_model=TaskResultView,
    responses={
        202: {"model": TaskResultView},
        404: PROBLEM,
        410: PROBLEM,
        422: PROBLEM,
        503: PROBLEM,
    },
)
async def get_result(
    task_id: TaskId,
    task_state: TaskStateDep,
    caller: CallerDep,
    response: Response,
    wait: WaitSeconds = 0.0,
) -> TaskResultView:
    """A task's output; 202 with Retry-After while it is not finished (``?wait=S`` long-polls)."""
    state = await load_task(task_state, task_id, caller, wait)
    if state["state"] not in TERMINAL_STATES:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Retry-After"] = "1"
    return _result_view(state)


@router.post(
    "/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskStatusView,
    responses={404: PROBLEM, 409: PROBLEM, 410: PROBLEM, 503: PROBLEM},
)
async def cancel_task(
    task_id: TaskId, task_state: TaskStateDep, publisher: PublisherDep, caller: CallerDep
) -> TaskStatusView:
    """Ask to cancel a task: a PENDING one never runs; 409 once it has finished."""
    state = await load_task(task_state, task_id, caller)
    if state["state"] in TERMINAL_STATES:
        raise TaskAlreadyFinished(f"task {task_id} is already {state['state']}")
    await publisher.publish_cancellation(state["task_id"])
    return _status_view(state)


def _result_view(state: dict[str, Any]) -> TaskResultView:
    result = state.get("result") or {}
    return TaskResultView(
        task_id=state["task_id"],
        kind=state["kind"],
        status=state["state"],
        output=result.get("output"),
        model=result.get("model"),
        error=state.get("error"),
    )


def _url(url: object | None) -> str | None:
    return str(url) if url else None


def _status_view(state: dict[str, Any]) -> TaskStatusView:
    fields = {k: v for k, v in state.items() if k in TaskStatusView.model_fields}
    return TaskStatusView(**{**fields, "status": state["state"]})
