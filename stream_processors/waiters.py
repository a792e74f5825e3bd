"""Queries waiting for a task to change (long-poll), woken when the table changes.

The agent that writes the task-state table calls :func:`notify_changed` after
each write, with the state it wrote; a view that long-polls awaits
:func:`wait_for_change`, which answers that state, so the woken query need not
read back what was just written. Nothing here touches Kafka or the table: it is
a registry of waiting queries by task id, local to this worker (queries are
routed to the worker that owns the task, which is also the worker whose agent
writes it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

__all__ = [
    "QUERIES_WAITING",
    "Change",
    "notify_changed",
    "wait_for_change",
    "waiting_count",
    "wake_all",
]


@dataclass(eq=False)
class Change:
    """A waiting query, once woken: ``state`` is the task's latest state written
    before the query resumed, or None when woken without one (``wake_all``)."""

    state: dict[str, Any] | None = None
    woken: asyncio.Event = field(default_factory=asyncio.Event)


_waiting: dict[str, set[Change]] = {}


def notify_changed(task_id: str, state: dict[str, Any] | None = None) -> None:
    """Wake every query waiting on ``task_id`` and hand it ``state``; cheap when
    nobody waits. A query stays registered until it resumes, so a second write
    before then hands it the newer state."""
    for change in _waiting.get(task_id, ()):
        if state is not None:
            change.state = state
        change.woken.set()


def wake_all() -> None:
    """Wake every waiting query, e.g. when partitions move to another worker."""
    for task_id in list(_waiting):
        notify_changed(task_id)


async def wait_for_change(task_id: str, timeout_s: float) -> Change | None:
    """Wait until ``task_id`` changes or ``timeout_s`` passes: the change, or None.

    Registers before its first ``await``, so a caller that read the table and
    then calls this cannot miss a change written in between.
    """
    change = Change()
    _waiting.setdefault(task_id, set()).add(change)
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            await change.woken.wait()
        return change
    except TimeoutError:
        return None
    finally:
        waiters = _waiting.get(task_id)
        if waiters is not None:
            waiters.discard(change)
            if not waiters:
                del _waiting[task_id]


def waiting_count() -> int:
    """How many queries wait right now."""
    return sum(len(changes) for changes in _waiting.values())


QUERIES_WAITING = Gauge(
    "asyncarch_processor_queries_waiting", "Task queries long-polling on this worker now"
)
QUERIES_WAITING.set_function(waiting_count)
