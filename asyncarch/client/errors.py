"""The client's errors, and the helpers that make them from the API's answers."""

from __future__ import annotations

from typing import Any

import httpx

from asyncarch.exceptions import AsyncarchError

__all__ = [
    "ApiUnreachable",
    "ClientError",
    "ServiceUnavailable",
    "TaskNotFinished",
    "TaskNotFound",
    "TaskTimeout",
    "TlsSetupError",
    "WebhookSignatureError",
    "error_from_response",
    "parse_retry_after",
]


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


class TlsSetupError(AsyncarchError, ValueError):
    """The client's HTTPS options cannot work: an unreadable CA bundle, or two that clash."""


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
    if "CERTIFICATE_VERIFY_FAILED" in detail:
        detail += " (for a self-signed API, trust its certificate: --ca-bundle or ca_bundle=)"
    return ApiUnreachable(None, {"title": "API unreachable", "detail": detail})
