"""Result deliveries: their record, the retry schedule, and how the API shows them.

Pure logic, no Faust and no network. A finished task is delivered to each of
its targets: ``webhook`` (its ``callback_url``) and ``sink`` (its
``deliver_to``, an S3 bucket or FTP server). The ``webhook-deliveries`` table
holds, keyed by task id, one delivery per target: where it goes, whether it is
``pending``, ``delivered``, ``failed`` or ``refused``, when the next attempt is
due, and the attempts so far. ``delivery/dispatch.py`` acts on it.

A value written before sinks existed is the webhook's delivery itself;
``targets_of`` reads it as ``{"webhook": value}``, and the next write stores
the new shape.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from asyncarch.backoff import full_jitter_s
from stream_processors.delivery.payload import delivery_id, event_type
from stream_processors.state_machine import TERMINAL_STATES

__all__ = [
    "OUTCOMES",
    "SINK",
    "TARGETS",
    "WEBHOOK",
    "AttemptResult",
    "DueDeliveries",
    "RetryPolicy",
    "backoff_delay_s",
    "classify_response",
    "needs_delivery",
    "new_delivery",
    "record_attempt",
    "targets_of",
    "with_deliveries",
]

DELIVERED, RETRYING, FAILED, REFUSED = "delivered", "retrying", "failed", "refused"
OUTCOMES = (DELIVERED, RETRYING, FAILED, REFUSED)
PENDING = "pending"
ATTEMPTS_KEPT = 50
_STATUS_AFTER = {DELIVERED: DELIVERED, RETRYING: PENDING, FAILED: FAILED, REFUSED: REFUSED}
WEBHOOK, SINK = "webhook", "sink"
# Each delivery target: the task-state field naming it, and its history entries' state.
TARGETS = {WEBHOOK: "callback_url", SINK: "deliver_to"}
_HISTORY_STATES = {WEBHOOK: "WEBHOOK", SINK: "SINK"}


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a delivery is retried."""

    retry_for_ms: int
    initial_s: float
    max_s: float


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt came to; ``error`` is ``{"type", "message"}`` like a task's error."""

    outcome: str
    status_code: int | None = None
    error: dict[str, str] | None = None
    retry_after_s: float | None = None


def backoff_delay_s(
    failures: int, policy: RetryPolicy, rng: Callable[[], float] = random.random
) -> float:
    """Delay after the ``failures``-th failed attempt: exponential with full jitter.

    Uniform in ``[0, min(max_s, initial_s * 2 ** (failures - 1))]``, so receivers
    that failed together do not all come back at the same moment.
    """
    return full_jitter_s(failures, policy.initial_s, policy.max_s, rng)


def classify_response(status_code: int, headers: Mapping[str, str]) -> AttemptResult:
    """2xx delivers; 429 and 5xx are retried; redirects and other codes are final."""
    if 200 <= status_code < 300:
        return AttemptResult(DELIVERED, status_code)
    if status_code == 429 or status_code >= 500:
        error = {"type": "HTTPStatus", "message": f"HTTP {status_code}"}
        return AttemptResult(RETRYING, status_code, error, _retry_after(headers))
    if 300 <= status_code < 400:
        where = headers.get("location", "nowhere")
        error = {"type": "Redirect", "message": f"HTTP {status_code} to {where}: not followed"}
        return AttemptResult(FAILED, status_code, error)
    return AttemptResult(
        FAILED, status_code, {"type": "HTTPStatus", "message": f"HTTP {status_code}"}
    )


def needs_delivery(state: Mapping[str, Any] | None, target: str = WEBHOOK) -> bool:
    """Whether a task state calls for a delivery to ``target``: terminal, and it names one."""
    return bool(state and state["state"] in TERMINAL_STATES and state.get(TARGETS[target]))


def new_delivery(
    state: Mapping[str, Any], now_ms: int, policy: RetryPolicy, target: str = WEBHOOK
) -> dict[str, Any]:
    """A pending delivery to ``target`` for a task that just finished, due now."""
    return {
        "task_id": state["task_id"],
        "url": state[TARGETS[target]],
        "delivery_id": delivery_id(state["task_id"]),
        "event": event_type(state["state"]),
        "status": PENDING,
        "created_at": now_ms,
        "deadline_at": now_ms + policy.retry_for_ms,
        "next_attempt_at": now_ms,
        "attempt_count": 0,
        "attempts": [],
    }


def record_attempt(
    delivery: Mapping[str, Any],
    result: AttemptResult,
    at_ms: int,
    policy: RetryPolicy,
    rng: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """The delivery after one attempt that started at ``at_ms``: its new status, the
    attempt appended, and when the next one is due (None once it is settled)."""
    number = delivery["attempt_count"] + 1
    outcome, error, next_at = result.outcome, result.error, None
    if outcome == RETRYING:
        next_at = at_ms + int(_retry_delay_s(number, result, policy, rng) * 1000)
        if next_at > delivery["deadline_at"]:
            outcome, next_at = FAILED, None
            error = _gave_up(error, number, policy)
    entry = {"attempt": number, "at": at_ms, "outcome": outcome, "status_code": result.status_code}
    entry |= {"error": error, "next_attempt_at": next_at}
    return {
        **delivery,
        "status": _STATUS_AFTER[outcome],
        "attempt_count": number,
        "next_attempt_at": next_at,
        "attempts": [*delivery["attempts"], entry][-ATTEMPTS_KEPT:],
    }


def targets_of(value: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """A task's deliveries by target, from its value in the deliveries table."""
    if not value:
        return {}
    if "delivery_id" in value:  # written before sinks: the webhook's delivery itself
        return {WEBHOOK: dict(value)}
    return {target: value[target] for target in TARGETS if value.get(target)}


def with_deliveries(state: dict[str, Any], value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A task state as the API shows it: each delivery's attempts appended to its history
    (entries with state ``WEBHOOK`` or ``SINK``, in time order) and a summary per target
    (``webhook``, ``sink``)."""
    deliveries = targets_of(value)
    if not deliveries:
        return state
    entries = sorted(
        (
            _history_entry(target, attempt)
            for target, delivery in deliveries.items()
            for attempt in delivery["attempts"]
        ),
        key=lambda entry: entry["at"],
    )
    summaries = {target: _summary(delivery) for target, delivery in deliveries.items()}
    return {**state, "history": [*state["history"], *entries], **summaries}


class DueDeliveries:
    """This worker's pending deliveries by due time (a heap), and those in flight.

    A delivery is named by a key: ``(task_id, target)`` in the dispatcher.
    """

    def __init__(self) -> None:
        self._due: dict[Any, int] = {}
        self._heap: list[tuple[int, Any]] = []
        self.in_flight: set[Any] = set()

    def schedule(self, task_id: Any, due_ms: int) -> None:
        """Make ``task_id`` due at ``due_ms`` (replacing any earlier schedule)."""
        self._due[task_id] = due_ms
        heapq.heappush(self._heap, (due_ms, task_id))

    def reset(self, pending: Iterable[tuple[Any, int]]) -> None:
        """Replace the schedule with ``pending`` (after partitions moved)."""
        self._due = {task_id: due for task_id, due in pending if task_id not in self.in_flight}
        self._heap = [(due, task_id) for task_id, due in self._due.items()]
        heapq.heapify(self._heap)

    def take(self, now_ms: int, limit: int) -> list[Any]:
        """Up to ``limit`` due keys, earliest first; they leave the schedule."""
        taken: list[Any] = []
        while self._heap and len(taken) < limit and self._heap[0][0] <= now_ms:
            due, task_id = heapq.heappop(self._heap)
            if self._due.get(task_id) == due and task_id not in self.in_flight:
                del self._due[task_id]
                taken.append(task_id)
        return taken

    def __len__(self) -> int:
        return len(self._due)


def _retry_delay_s(
    number: int, result: AttemptResult, policy: RetryPolicy, rng: Callable[[], float]
) -> float:
    delay = backoff_delay_s(number, policy, rng)
    if result.retry_after_s is not None:  # the receiver asked for a pause (429, 503)
        delay = max(delay, min(result.retry_after_s, policy.max_s))
    return delay


def _gave_up(error: dict[str, str] | None, attempts: int, policy: RetryPolicy) -> dict[str, str]:
    cause = error["message"] if error else "retryable failure"
    window_s = policy.retry_for_ms / 1000
    message = f"{cause}; gave up after {attempts} attempts ({window_s:g} s retry window)"
    return {"type": error["type"] if error else "GaveUp", "message": message}


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        value = float(headers.get("retry-after", ""))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
    return max(0.0, value)


def _summary(delivery: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": delivery["delivery_id"],
        "event": delivery["event"],
        "status": delivery["status"],
        "attempts": delivery["attempt_count"],
        "next_attempt_at": delivery["next_attempt_at"],
    }


def _history_entry(target: str, attempt: Mapping[str, Any]) -> dict[str, Any]:
    entry = {"state": _HISTORY_STATES[target], **attempt}
    return {key: value for key, value in entry.items() if value is not None}
