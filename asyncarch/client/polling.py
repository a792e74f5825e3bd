"""The schedule of ``wait``: long-polls for the next change, with exponential
backoff (restarting when the task moves) when the API answers without waiting."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

from asyncarch.backoff import capped_exponential_s
from asyncarch.client.errors import TaskTimeout
from schemas.states import TERMINAL_STATES

__all__ = ["LONG_POLL_S", "TERMINAL_STATES", "StatusCallback", "StatusPoll", "backoff_delays"]

# One long-poll's wait: under the API's 30 s bound and common proxy idle timeouts.
LONG_POLL_S = 20.0
StatusCallback = Callable[[dict[str, Any]], object]


def backoff_delays(initial_s: float, maximum_s: float, factor: float = 2.0) -> Iterator[float]:
    """Exponential delays: ``initial_s``, then times ``factor``, capped at ``maximum_s``."""
    for attempt in itertools.count(1):
        yield capped_exponential_s(attempt, initial_s, maximum_s, factor)


class StatusPoll:
    """The decisions of one ``wait``: what changed, how long to sleep, when to give up.

    The first request reads the status at once; each next one long-polls
    (``request_wait``) for a change from the ``updated_at`` seen last, so
    ``on_status`` sees every state and the answer comes as soon as the task
    moves. An API that answers without waiting (an older one) is polled with
    exponential backoff, which restarts whenever the status changes: a task
    that moved is likely to move again soon.
    """

    def __init__(
        self,
        task_id: str,
        timeout_s: float,
        poll_interval_s: float,
        max_interval_s: float,
        on_status: StatusCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        long_poll_s: float = LONG_POLL_S,
    ) -> None:
        if timeout_s < 0 or poll_interval_s <= 0 or max_interval_s < poll_interval_s:
            raise ValueError("need timeout_s >= 0 and 0 < poll_interval_s <= max_interval_s")
        self.task_id, self.timeout_s = task_id, timeout_s
        self._intervals = (poll_interval_s, max_interval_s)
        self._delays = backoff_delays(*self._intervals)
        self._on_status, self._clock = on_status, clock
        self._deadline = clock() + timeout_s
        self.long_poll_s = long_poll_s
        self.last: dict[str, Any] | None = None
        self._changed = False

    def observe(self, body: dict[str, Any]) -> bool:
        """Record a status body, report a change to ``on_status``; True once terminal."""
        self._changed = self.last is None or _progress_key(body) != _progress_key(self.last)
        if self._changed:
            self._delays = backoff_delays(*self._intervals)
            if self._on_status is not None:
                self._on_status(body)
        self.last = body
        return body.get("status") in TERMINAL_STATES

    def request_wait(self) -> tuple[float, int | None]:
        """``(wait_s, since)`` of the next status request: 0 for the first one,
        then a long-poll for a change from the last ``updated_at`` seen.

        Raises:
            TaskTimeout: The deadline has passed.
        """
        remaining = self._remaining()
        if self.last is None:
            return 0.0, None
        since = self.last.get("updated_at")
        return min(self.long_poll_s, remaining), since if isinstance(since, int) else None

    def delay_after(self, elapsed_s: float) -> float:
        """Seconds to sleep after an answer that took ``elapsed_s``: none after a
        change (the next long-poll waits for the one after), else what the
        backoff has left once the request's own wait is counted.

        Raises:
            TaskTimeout: The deadline has passed.
        """
        if self._changed:
            self._remaining()
            return 0.0
        return max(0.0, self.next_delay() - elapsed_s)

    def next_delay(self, hint_s: float | None = None) -> float:
        """Seconds to sleep before the next poll (``hint_s`` from a Retry-After, if any).

        Raises:
            TaskTimeout: The deadline has passed.
        """
        remaining = self._remaining()
        return min(next(self._delays) if hint_s is None else hint_s, remaining)

    def _remaining(self) -> float:
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise TaskTimeout(self.task_id, self.timeout_s, self.last)
        return remaining


def _progress_key(body: dict[str, Any]) -> tuple[Any, Any]:
    """What counts as a change while waiting: the status, or a long task's progress."""
    return body.get("status"), body.get("progress")
