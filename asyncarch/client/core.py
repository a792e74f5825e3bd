"""The pure core both clients share: requests to send, answers to bodies or errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from asyncarch import __version__
from asyncarch.client.errors import (
    ClientError,
    TaskNotFinished,
    _fallback_problem,
    error_from_response,
    parse_retry_after,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "HEADERS",
    "ApiRequest",
    "TaskHandle",
    "TaskRef",
    "document_request",
    "parse_result",
    "parse_status",
    "parse_submit",
    "result_request",
    "status_request",
    "submit_request",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
HEADERS = {
    "Accept": "application/json, application/problem+json",
    "User-Agent": f"asyncarch-client/{__version__}",
}


@dataclass(frozen=True)
class TaskHandle:
    """An accepted task: the answer to ``POST /v1/tasks``."""

    task_id: str
    status: str
    links: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.task_id


TaskRef = str | TaskHandle


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP request of the API, not yet sent."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    params: dict[str, str] | None = None
    wait_s: float = 0.0

    def send_kwargs(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` for this request.

        Args:
            timeout_s: The client's timeout of a plain request; a long-poll gets
                its ``wait_s`` on top.
        """
        kwargs: dict[str, Any] = {
            "json": self.json,
            "headers": self.headers,
            "data": self.data,
            "files": self.files,
            "params": self.params,
        }
        if timeout_s is not None:
            kwargs["timeout"] = timeout_s + self.wait_s
        return kwargs


def submit_request(
    kind: str,
    inputs: dict[str, Any],
    *,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    deliver_to: str | None = None,
) -> ApiRequest:
    """The ``POST /v1/tasks`` request.

    Args:
        kind: ``similarity`` or ``embed``.
        inputs: The kind's inputs, e.g. ``{"item_a": "TV", "item_b": "Samsung"}``.
        callback_url: Called by the pipeline when the task reaches a terminal state.
        idempotency_key: Sent as the ``Idempotency-Key`` header: the same key and
            body return the same task, a different body answers 409.
        deliver_to: A result sink, ``s3://bucket/prefix`` or ``ftp://host/path/``, that
            the server's settings allow (else the API answers 422).

    Returns:
        The request to send.
    """
    body: dict[str, Any] = {"kind": kind, "inputs": inputs}
    if callback_url is not None:
        body["callback_url"] = callback_url
    if deliver_to is not None:
        body["deliver_to"] = deliver_to
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return ApiRequest("POST", "/v1/tasks", body, headers)


def document_request(
    document: Path,
    query: str,
    *,
    top_k: int = 5,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    deliver_to: str | None = None,
) -> ApiRequest:
    """The multipart ``POST /v1/tasks`` request of a ``document-search`` task.

    Args:
        document: A .txt, .md or .pdf file; the API stores it by claim check.
        query: What to rank the document's passages against.
        top_k: How many passages to return.
        callback_url: As :func:`submit_request`.
        idempotency_key: As :func:`submit_request`.
        deliver_to: As :func:`submit_request`.

    Returns:
        The request to send.
    """
    data = {"query": query, "top_k": str(top_k)}
    if callback_url is not None:
        data["callback_url"] = callback_url
    if deliver_to is not None:
        data["deliver_to"] = deliver_to
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    files = {"file": (document.name, document.read_bytes(), "application/octet-stream")}
    return ApiRequest("POST", "/v1/tasks", headers=headers, data=data, files=files)


def status_request(task: TaskRef, wait_s: float = 0.0, since: int | None = None) -> ApiRequest:
    """The ``GET /v1/tasks/{id}`` request.

    Args:
        task: The task id or handle.
        wait_s: Long-poll: the API answers once the task is terminal, or after
            this many seconds (at most 30). 0 answers at once.
        since: With ``wait_s``, the ``updated_at`` of the status already seen:
            the API also answers as soon as the task changes from it.
    """
    return ApiRequest("GET", f"/v1/tasks/{_quoted(task)}", **_long_poll(wait_s, since))


def result_request(task: TaskRef, wait_s: float = 0.0) -> ApiRequest:
    """The ``GET /v1/tasks/{id}/result`` request; ``wait_s`` as :func:`status_request`."""
    return ApiRequest("GET", f"/v1/tasks/{_quoted(task)}/result", **_long_poll(wait_s, None))


def _long_poll(wait_s: float, since: int | None) -> dict[str, Any]:
    if wait_s <= 0:
        return {}
    params = {"wait": f"{wait_s:.3f}"}
    if since is not None:
        params["since"] = str(since)
    return {"params": params, "wait_s": wait_s}


def parse_submit(response: httpx.Response) -> TaskHandle:
    """The accepted task of a ``POST /v1/tasks`` answer; raises its error otherwise."""
    body = _success_body(response)
    return TaskHandle(str(body["task_id"]), str(body["status"]), dict(body.get("links") or {}))


def parse_status(response: httpx.Response) -> dict[str, Any]:
    """The status body of a ``GET /v1/tasks/{id}`` answer; raises its error otherwise."""
    return _success_body(response)


def parse_result(response: httpx.Response) -> dict[str, Any]:
    """The result body of a finished task.

    Raises:
        TaskNotFinished: The API answered 202: the task is still pending or running.
        ClientError: The API answered an error (``TaskNotFound`` for 404).
    """
    body = _success_body(response)
    if response.status_code == 202:
        raise TaskNotFinished(body, parse_retry_after(response.headers.get("Retry-After")))
    return body


def _quoted(task: TaskRef) -> str:
    return quote(str(task), safe="")


def _success_body(response: httpx.Response) -> dict[str, Any]:
    if response.is_error:
        raise error_from_response(response)
    try:
        body = response.json()
    except ValueError as exc:
        raise ClientError(response.status_code, _fallback_problem(response)) from exc
    if not isinstance(body, dict):
        raise ClientError(response.status_code, _fallback_problem(response))
    return body
