"""The seed Flask service's routes under ``/activedocuments/nexans/``, for its clients.

Each route answers with the seed's text. Every path is served with and without
its trailing slash: the seed's README writes ``echo/``, its Flask app registered
``/echo``, so its clients use either. The slash-less twins stay out of OpenAPI.
The same routes answer under ``/prediction/`` too, the prefix of the seed's
install check and examples; that alias stays out of OpenAPI as well.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, ValidationError
from starlette.datastructures import FormData, UploadFile

from producer_api.access import load_task
from producer_api.api.deps import (
    AdmissionDep,
    BlobStoreDep,
    CallerDep,
    SettingsDep,
    SubmitterDep,
    TaskStateDep,
)
from producer_api.exceptions import UnsupportedMediaType
from producer_api.models import (
    TASK_REQUEST_BODY,
    DocumentSearchForm,
    SeedDocumentForm,
    TaskAccepted,
    Text,
)
from producer_api.problems import PROBLEM
from producer_api.security import Caller
from producer_api.submission import Submission, read_document_form
from schemas.states import TERMINAL_STATES

__all__ = ["ALIAS_PREFIX", "PREFIX", "router"]

PREFIX = "/activedocuments/nexans"
ALIAS_PREFIX = "/prediction"
ECHO_TEXT = "Hello! FINALMENTE!"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
TaskId = Annotated[str, Path(description="Task id returned by uploader/")]

routes = APIRouter(tags=["seed-compatible"])


class PairForm(BaseModel):
    """The seed's form without a document: two items. Other fields are ignored, as the
    seed ignored them."""

    model_config = ConfigDict(extra="ignore")

    item_a: Text
    item_b: Text
    callback_url: AnyHttpUrl | None = None


_PAIR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["item_a", "item_b"],
    "properties": {
        name: {"type": "string", "minLength": 1, "maxLength": 10_000, "examples": [example]}
        for name, example in (("item_a", "TV"), ("item_b", "Samsung"))
    }
    | {"callback_url": {"type": "string", "format": "uri"}},
}
_DOCUMENT_SCHEMA = TASK_REQUEST_BODY["content"]["multipart/form-data"]["schema"]
# A document with the seed's items: they are the query when none is given.
_ITEMS_DOCUMENT_SCHEMA = {
    **_DOCUMENT_SCHEMA,
    "required": ["item_a", "item_b", "file"],
    "properties": {**_DOCUMENT_SCHEMA["properties"], **_PAIR_SCHEMA["properties"]},
}
UPLOADER_BODY = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {"schema": _PAIR_SCHEMA},
        "multipart/form-data": {
            "schema": {"anyOf": [_PAIR_SCHEMA, _DOCUMENT_SCHEMA, _ITEMS_DOCUMENT_SCHEMA]}
        },
    },
}
TASK_PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: PROBLEM,
    404: PROBLEM,
    410: PROBLEM,
    503: PROBLEM,
}


@routes.get("/echo/", response_class=PlainTextResponse)
@routes.get("/echo", response_class=PlainTextResponse, include_in_schema=False)
async def echo() -> str:
    """Answers while the web server is up, with the seed's text."""
    return ECHO_TEXT


@routes.get("/upload/", response_class=HTMLResponse)
@routes.get("/upload", response_class=HTMLResponse, include_in_schema=False)
async def upload() -> str:
    """The minimal HTML page: submit a task and watch it to its result."""
    return _upload_page()


@routes.post(
    "/uploader/",
    response_model=TaskAccepted,
    responses={
        400: PROBLEM,
        401: PROBLEM,
        413: PROBLEM,
        415: PROBLEM,
        422: PROBLEM,
        429: PROBLEM,
        503: PROBLEM,
    },
    openapi_extra={"requestBody": UPLOADER_BODY},
)
@routes.post("/uploader", response_model=TaskAccepted, include_in_schema=False)
async def uploader(
    request: Request,
    caller: AdmissionDep,
    submitter: SubmitterDep,
    settings: SettingsDep,
    store: BlobStoreDep,
) -> TaskAccepted:
    """The seed's form post: item_a and item_b, with or without a document; 200 with the id."""
    _require_form(request.headers.get("content-type"))
    async with request.form(max_files=1, max_fields=10) as form:
        if not _has_document(form):
            return (await submitter.accept(_pair_submission(form, caller)))[0]
        document = await read_document_form(
            request, store, settings.max_upload_bytes, SeedDocumentForm
        )
        submission = _document_submission(*document, caller)
    return (await submitter.accept_document(submission, store))[0]


@routes.get("/task_status/{task_id}", response_class=PlainTextResponse, responses=TASK_PROBLEMS)
@routes.get("/task_status/{task_id}/", response_class=PlainTextResponse, include_in_schema=False)
async def task_status(task_id: TaskId, task_state: TaskStateDep, caller: CallerDep) -> str:
    """The seed's text "Status of the Task <status>"."""
    state = await load_task(task_state, task_id, caller)
    return f"Status of the Task {state['state']}"


@routes.get("/task_result/{task_id}", response_class=PlainTextResponse, responses=TASK_PROBLEMS)
@routes.get("/task_result/{task_id}/", response_class=PlainTextResponse, include_in_schema=False)
async def task_result(
    task_id: TaskId, task_state: TaskStateDep, caller: CallerDep
) -> PlainTextResponse:
    """The seed's text "Result of the Task <result>"; 202 with Retry-After until finished."""
    state = await load_task(task_state, task_id, caller)
    text = f"Result of the Task {_result_text(state)}"
    if state["state"] in TERMINAL_STATES:
        return PlainTextResponse(text)
    return PlainTextResponse(text, status_code=202, headers={"Retry-After": "1"})


router = APIRouter()
router.include_router(routes, prefix=PREFIX)
router.include_router(routes, prefix=ALIAS_PREFIX, include_in_schema=False)


@cache
def _upload_page() -> str:
    return resources.files("producer_api").joinpath("templates/upload.html").read_text("utf-8")


def _require_form(content_type: str | None) -> None:
    """No content type reads as an empty form (the seed's clients may send none)."""
    media_type = (content_type or FORM_TYPES[0]).split(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        raise UnsupportedMediaType(
            f"uploader/ takes an HTML form ({' or '.join(FORM_TYPES)}), not {media_type}"
        )


def _has_document(form: FormData) -> bool:
    """A file part with a name; browsers send an empty, nameless one when none was chosen."""
    upload = form.get("file")
    return isinstance(upload, UploadFile) and bool(upload.filename)


def _pair_submission(form: FormData, caller: Caller) -> Submission:
    try:
        pair = PairForm.model_validate(dict(form))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from exc
    inputs = {"item_a": pair.item_a, "item_b": pair.item_b}
    return Submission("similarity", inputs, _url(pair.callback_url), caller.tenant)


def _document_submission(
    form: DocumentSearchForm, inputs: dict[str, Any], caller: Caller
) -> Submission:
    return Submission(
        "document-search",
        inputs,
        _url(form.callback_url),
        caller.tenant,
        deliver_to=form.deliver_to,
    )


def _url(url: AnyHttpUrl | None) -> str | None:
    return str(url) if url else None


def _result_text(state: dict[str, Any]) -> str:
    """The output as compact JSON; a failure's message (Celery's str(exception)); else None."""
    if state["state"] == "SUCCESS":
        output = (state.get("result") or {}).get("output")
        return json.dumps(output, separators=(",", ":"))
    if state["state"] == "FAILED" and state.get("error"):
        return str(state["error"].get("message"))
    return "None"
