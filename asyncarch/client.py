"""A small Python client of the task API, sync and async.

Both clients are thin shells around one pure core: functions that build an
:class:`ApiRequest` and functions that turn an ``httpx.Response`` into a body
or an error, plus :class:`StatusPoll`, which decides how long ``wait`` sleeps.
Only sending and sleeping differ between the two classes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

import httpx

from asyncarch import __version__
from asyncarch.exceptions import AsyncarchError

__all__ = [
    "TERMINAL_STATES",
    "ApiUnreachable",
    "AsyncAsyncarchClient",
    "AsyncarchClient",
    "ClientError",
    "ServiceUnavailable",
    "TaskHandle",
    "TaskNotFinished",
    "TaskNotFound",
    "TaskTimeout",
    "WebhookSignatureError",
    "verify_webhook_signature",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
TERMINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
HEADERS = {
    "Accept": "application/json, application/problem+json",
    "User-Agent": f"asyncarch-client/{__version__}",
}
StatusCallback = Callable[[dict[str, Any]], object]


class ClientError(AsyncarchError):
    """The API answered an error: its status code and RFC 9457 problem body."""

    def __init__(self, status_code: int | None, problem: dict[str, Any]) -> None:
        self.status_code = status_code
        self.problem = problem
        self.title = str(problem.get("title") or "Error")
        self.detail = str(problem.get("detail") or "")
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        summary = f"{status_code} {self.title}" if status_code else self.title
        super().__init__(f"{summary}: {self.detail}" if self.detail else summary)

    @property
    def fields(self) -> list[str]:
        """The fields a 422 names, as the request wrote them (``inputs.item_b``)."""
        return [str(error.get("field")) for error in self.errors]


class TaskNotFound(ClientError):
    """404: no task has this id."""


class ServiceUnavailable(ClientError):
    """503: Kafka or the task-state table did not answer in time; retry later."""

    def __init__(
        self, status_code: int, problem: dict[str, Any], retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, problem)
        self.retry_after = retry_after


class ApiUnreachable(ClientError):
    """No HTTP answer at all: connection refused, DNS, timeout."""


class TaskNotFinished(AsyncarchError):
    """The result was asked for while the task is still running (202)."""

    def __init__(self, body: dict[str, Any], retry_after: float | None) -> None:
        self.body = body
        self.status = str(body.get("status"))
        self.retry_after = retry_after
        super().__init__(f"task {body.get('task_id')} is {self.status}, not finished")


class TaskTimeout(AsyncarchError):
    """``wait`` gave up before the task reached a terminal state."""

    def __init__(self, task_id: str, timeout_s: float, last: dict[str, Any] | None) -> None:
        self.task_id = task_id
        self.timeout_s = timeout_s
        self.last = last
        status = last.get("status") if last else "unknown"
        super().__init__(f"task {task_id} still {status} after {timeout_s:g}s")


class WebhookSignatureError(AsyncarchError):
    """A webhook's ``Asyncarch-Signature`` is missing, malformed, stale or does not match."""


def verify_webhook_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Check a webhook from the pipeline before trusting its body.

    Args:
        secret: The processor's ``PROCESSOR_WEBHOOK_SECRET``.
        body: The request body exactly as received (raw bytes, before parsing).
        header: The ``Asyncarch-Signature`` header: ``t=<unix seconds>,v1=<hex>``.
        tolerance_s: Largest accepted distance between ``t`` and now (replays).
        now: The current Unix time (tests).

    Raises:
        WebhookSignatureError: The signature is not valid for this body, or too old.
    """
    fields = [part.strip().partition("=") for part in (header or "").split(",")]
    signatures = [value for key, _, value in fields if key == "v1"]
    timestamps = [value for key, _, value in fields if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise WebhookSignatureError("malformed or missing Asyncarch-Signature header")
    key = secret.encode() if isinstance(secret, str) else secret
    signed = timestamps[0].encode() + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise WebhookSignatureError("signature does not match the body")
    age = (time.time() if now is None else now) - int(timestamps[0])
    if abs(age) > tolerance_s:
        raise WebhookSignatureError(f"signature timestamp is {age:.0f} s off (> {tolerance_s:g} s)")


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

    def send_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` for this request."""
        return {"json": self.json, "headers": self.headers, "data": self.data, "files": self.files}


def submit_request(
    kind: str,
    inputs: dict[str, Any],
    *,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
) -> ApiRequest:
    """The ``POST /v1/tasks`` request.

    Args:
        kind: ``similarity`` or ``embed``.
        inputs: The kind's inputs, e.g. ``{"item_a": "TV", "item_b": "Samsung"}``.
        callback_url: Called by the pipeline when the task reaches a terminal state.
        idempotency_key: Sent as the ``Idempotency-Key`` header: the same key and
            body return the same task, a different body answers 409.

    Returns:
        The request to send.
    """
    body: dict[str, Any] = {"kind": kind, "inputs": inputs}
    if callback_url is not None:
        body["callback_url"] = callback_url
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return ApiRequest("POST", "/v1/tasks", body, headers)


def document_request(
    document: Path,
    query: str,
    *,
    top_k: int = 5,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
) -> ApiRequest:
    """The multipart ``POST /v1/tasks`` request of a ``document-search`` task.

    Args:
        document: A .txt, .md or .pdf file; the API stores it by claim check.
        query: What to rank the document's passages against.
        top_k: How many passages to return.
        callback_url: As :func:`submit_request`.
        idempotency_key: As :func:`submit_request`.

    Returns:
        The request to send.
    """
    data = {"query": query, "top_k": str(top_k)}
    if callback_url is not None:
        data["callback_url"] = callback_url
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    files = {"file": (document.name, document.read_bytes(), "application/octet-stream")}
    return ApiRequest("POST", "/v1/tasks", headers=headers, data=data, files=files)


def status_request(task: TaskRef) -> ApiRequest:
    """The ``GET /v1/tasks/{id}`` request."""
    return ApiRequest("GET", f"/v1/tasks/{_quoted(task)}")


def result_request(task: TaskRef) -> ApiRequest:
    """The ``GET /v1/tasks/{id}/result`` request."""
    return ApiRequest("GET", f"/v1/tasks/{_quoted(task)}/result")


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


def error_from_response(response: httpx.Response) -> ClientError:
    """The exception for an error answer, carrying its problem body."""
    problem = _problem_of(response)
    code = response.status_code
    if code == 404:
        return TaskNotFound(code, problem)
    if code == 503:
        return ServiceUnavailable(
            code, problem, parse_retry_after(response.headers.get("Retry-After"))
        )
    return ClientError(code, problem)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header; the API sends delay-seconds only."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def backoff_delays(initial_s: float, maximum_s: float, factor: float = 2.0) -> Iterator[float]:
    """Exponential delays: ``initial_s``, then times ``factor``, capped at ``maximum_s``."""
    delay = min(initial_s, maximum_s)
    while True:
        yield delay
        delay = min(delay * factor, maximum_s)


class StatusPoll:
    """The decisions of one ``wait``: what changed, how long to sleep, when to give up.

    The backoff restarts whenever the status changes: a task that moved is
    likely to move again soon.
    """

    def __init__(
        self,
        task_id: str,
        timeout_s: float,
        poll_interval_s: float,
        max_interval_s: float,
        on_status: StatusCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s < 0 or poll_interval_s <= 0 or max_interval_s < poll_interval_s:
            raise ValueError("need timeout_s >= 0 and 0 < poll_interval_s <= max_interval_s")
        self.task_id, self.timeout_s = task_id, timeout_s
        self._intervals = (poll_interval_s, max_interval_s)
        self._delays = backoff_delays(*self._intervals)
        self._on_status, self._clock = on_status, clock
        self._deadline = clock() + timeout_s
        self.last: dict[str, Any] | None = None

    def observe(self, body: dict[str, Any]) -> bool:
        """Record a status body, report a change to ``on_status``; True once terminal."""
        if self.last is None or _progress_key(body) != _progress_key(self.last):
            self._delays = backoff_delays(*self._intervals)
            if self._on_status is not None:
                self._on_status(body)
        self.last = body
        return body.get("status") in TERMINAL_STATES

    def next_delay(self, hint_s: float | None = None) -> float:
        """Seconds to sleep before the next poll (``hint_s`` from a Retry-After, if any).

        Raises:
            TaskTimeout: The deadline has passed.
        """
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise TaskTimeout(self.task_id, self.timeout_s, self.last)
        return min(next(self._delays) if hint_s is None else hint_s, remaining)


class AsyncarchClient:
    """Blocking client of the task API.

    Args:
        base_url: The API's origin, e.g. ``http://127.0.0.1:8000``.
        timeout_s: Timeout of each HTTP request.
        transport: An httpx transport to use instead of the network (tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout_s, headers=HEADERS, transport=transport
        )

    def submit(
        self,
        kind: str,
        inputs: dict[str, Any],
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        """Submit a task; returns once Kafka holds it. Arguments as :func:`submit_request`."""
        request = submit_request(
            kind, inputs, callback_url=callback_url, idempotency_key=idempotency_key
        )
        return parse_submit(self._send(request))

    def submit_similarity(self, item_a: str, item_b: str, **options: Any) -> TaskHandle:
        """Submit a ``similarity`` task; ``options`` as :meth:`submit`."""
        return self.submit("similarity", {"item_a": item_a, "item_b": item_b}, **options)

    def submit_document(self, document: Path, query: str, **options: Any) -> TaskHandle:
        """Upload a document for a ``document-search`` task; as :func:`document_request`."""
        return parse_submit(self._send(document_request(document, query, **options)))

    def status(self, task: TaskRef) -> dict[str, Any]:
        """The task's status body: ``status``, ``attempt``, timestamps, ``history``."""
        return parse_status(self._send(status_request(task)))

    def result(self, task: TaskRef) -> dict[str, Any]:
        """The finished task's result body; raises ``TaskNotFinished`` while it runs."""
        return parse_result(self._send(result_request(task)))

    def wait(
        self,
        task: TaskRef,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
        max_interval_s: float = 2.0,
        on_status: StatusCallback | None = None,
    ) -> dict[str, Any]:
        """Poll the task's status, backing off exponentially, until it is terminal.

        Args:
            task: The task id or handle.
            timeout_s: Give up after this long.
            poll_interval_s: First delay between polls, doubled up to ``max_interval_s``.
            max_interval_s: Longest delay between polls.
            on_status: Called with the status body whenever the status changes.

        Returns:
            The terminal (SUCCESS, FAILED or CANCELLED) status body.

        Raises:
            TaskTimeout: The task was not terminal within ``timeout_s``.
        """
        poll = StatusPoll(str(task), timeout_s, poll_interval_s, max_interval_s, on_status)
        while True:
            try:
                body = self.status(task)
            except ServiceUnavailable as exc:
                time.sleep(poll.next_delay(exc.retry_after))
                continue
            if poll.observe(body):
                return body
            time.sleep(poll.next_delay())

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send(self, request: ApiRequest) -> httpx.Response:
        try:
            return self._http.request(request.method, request.path, **request.send_kwargs())
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc


class AsyncAsyncarchClient:
    """Asyncio client of the task API; the same methods as :class:`AsyncarchClient`."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, timeout=timeout_s, headers=HEADERS, transport=transport
        )

    async def submit(
        self,
        kind: str,
        inputs: dict[str, Any],
        *,
        callback_url: str | None = None,
        idempotency_key: str | None = None,
    ) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit`."""
        request = submit_request(
            kind, inputs, callback_url=callback_url, idempotency_key=idempotency_key
        )
        return parse_submit(await self._send(request))

    async def submit_similarity(self, item_a: str, item_b: str, **options: Any) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit_similarity`."""
        return await self.submit("similarity", {"item_a": item_a, "item_b": item_b}, **options)

    async def submit_document(self, document: Path, query: str, **options: Any) -> TaskHandle:
        """See :meth:`AsyncarchClient.submit_document`."""
        return parse_submit(await self._send(document_request(document, query, **options)))

    async def status(self, task: TaskRef) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.status`."""
        return parse_status(await self._send(status_request(task)))

    async def result(self, task: TaskRef) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.result`."""
        return parse_result(await self._send(result_request(task)))

    async def wait(
        self,
        task: TaskRef,
        timeout_s: float = 60.0,
        poll_interval_s: float = 0.1,
        max_interval_s: float = 2.0,
        on_status: StatusCallback | None = None,
    ) -> dict[str, Any]:
        """See :meth:`AsyncarchClient.wait`; ``on_status`` is a plain callable here too."""
        poll = StatusPoll(str(task), timeout_s, poll_interval_s, max_interval_s, on_status)
        while True:
            try:
                body = await self.status(task)
            except ServiceUnavailable as exc:
                await asyncio.sleep(poll.next_delay(exc.retry_after))
                continue
            if poll.observe(body):
                return body
            await asyncio.sleep(poll.next_delay())

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _send(self, request: ApiRequest) -> httpx.Response:
        try:
            return await self._http.request(request.method, request.path, **request.send_kwargs())
        except httpx.TransportError as exc:
            raise _unreachable(exc) from exc


def _progress_key(body: dict[str, Any]) -> tuple[Any, Any]:
    """What counts as a change while waiting: the status, or a long task's progress."""
    return body.get("status"), body.get("progress")


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


def _problem_of(response: httpx.Response) -> dict[str, Any]:
    """The RFC 9457 body, or one made from the answer when it is not a problem body."""
    try:
        body = response.json()
    except ValueError:
        return _fallback_problem(response)
    return body if isinstance(body, dict) else _fallback_problem(response)


def _fallback_problem(response: httpx.Response) -> dict[str, Any]:
    return {
        "title": response.reason_phrase or "Unexpected response",
        "status": response.status_code,
        "detail": response.text[:500],
    }


def _unreachable(exc: httpx.TransportError) -> ApiUnreachable:
    try:
        where = str(exc.request.url)
    except RuntimeError:  # raised before a request was attached
        where = "the API"
    detail = f"{type(exc).__name__} talking to {where}: {exc}"
    return ApiUnreachable(None, {"title": "API unreachable", "detail": detail})
