"""Every error a client sees is an RFC 9457 problem body, produced here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from producer_api.exceptions import ApiError
from producer_api.metrics import TASKS_REJECTED
from producer_api.models import TASK_KINDS

__all__ = ["PROBLEM", "PROBLEM_JSON", "install_error_handlers", "problem_body"]

PROBLEM_JSON = "application/problem+json"
# An error response in route metadata; main.py fills in the Problem schema.
PROBLEM: dict[str, Any] = {"content": {PROBLEM_JSON: {}}}


def problem_body(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The members of an RFC 9457 problem body."""
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


def problem(
    status: int, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """An RFC 9457 problem response."""
    TASKS_REJECTED.labels(status=str(status)).inc()
    body = problem_body(status, title, detail, **extra)
    return JSONResponse(
        jsonable_encoder(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(exc.status, exc.title, str(exc), exc.headers())


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_of(err), "message": err["msg"], "type": err["type"]}
        for err in exc.errors()
    ]
    fields = ", ".join(e["field"] for e in errors)
    return problem(422, "Invalid request", f"invalid: {fields}", errors=errors)


def _field_of(error: dict[str, Any]) -> str:
    """The dotted field an error is about, as the client wrote it.

    pydantic puts the discriminator's value (the kind) into the location of
    errors inside a tagged union; the client never wrote that segment.
    """
    loc = [str(part) for part in error["loc"][1:]]
    if loc and loc[0] in TASK_KINDS:
        loc = loc[1:]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append(str(error.get("ctx", {}).get("discriminator", "kind")).strip("'"))
    return ".".join(loc) or str(error["loc"][0])


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, str(exc.detail), str(exc.detail))


def install_error_handlers(app: FastAPI) -> None:
    """Route API, validation and HTTP errors to problem bodies."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
