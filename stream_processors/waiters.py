"""Queries waiting for a task to change (long-poll), woken when the table changes.

The agent that writes the task-state table calls :func:`notify_changed` after
each write; a view that long-polls awaits :func:`wait_for_change`. Nothing here
touches Kafka or the table: it is a registry of asyncio events by task id, local
to this worker (queries are routed to the worker that owns the task, which is
also the worker whose agent writes it).
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

__all__ = ["QUERIES_WAITING", "notify_changed", "wait_for_change", "waiting_count", "wake_all"]

_waiting: dict[str, set[asyncio.Event]] = {}


def notify_changed(task_id: str) -> None:
    """Wake every query waiting on ``task_id``; cheap when nobody waits."""
    for event in _waiting.pop(task_id, ()):
        event.set()


def wake_all() -> None:
    """Wake every waiting query, e.g. when partitions move to another worker."""
    for task_id in list(_waiting):
        notify_changed(task_id)


async def wait_for_change(task_id: str, timeout_s: float) -> bool:
    """Wait until ``task_id`` changes or ``timeout_s`` passes; True if it changed.

    Registers before its first ``await``, so a caller that read the table and
    then calls this cannot miss a change written in between.
    """
    event = asyncio.Event()
    _waiting.setdefault(task_id, set()).add(event)
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            await event.wait()
        return True
    except TimeoutError:
        return False
    finally:
        waiters = _waiting.get(task_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del _waiting[task_id]


def waiting_count() -> int:
    """How many queries wait right now."""
    return sum(len(events) for events in _waiting.values())


QUERIES_WAITING = Gauge(
    "asyncarch_processor_queries_waiting", "Task queries long-polling on this worker now"
)
QUERIES_WAITING.set_function(waiting_count)
