"""The schedule of ``wait``: exponential backoff that restarts when the task moves."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from asyncarch.client.errors import TaskTimeout

__all__ = ["TERMINAL_STATES", "StatusCallback", "StatusPoll", "backoff_delays"]

TERMINAL_STATES = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
StatusCallback = Callable[[dict[str, Any]], object]


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


def _progress_key(body: dict[str, Any]) -> tuple[Any, Any]:
    """What counts as a change while waiting: the status, or a long task's progress."""
    return body.get("status"), body.get("progress")
