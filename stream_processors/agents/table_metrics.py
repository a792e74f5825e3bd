"""Tasks by state and the finished tasks' finish times (live, see ``state_counts``),
and how long the last recovery took."""

from __future__ import annotations

import asyncio
import time

from stream_processors.app import app
from stream_processors.metrics import RECOVERY_SECONDS, TABLE_TASKS
from stream_processors.state_counts import StateCounts
from stream_processors.state_machine import ALL_STATES, TERMINAL_STATES
from stream_processors.tables import owned_items, owned_partitions, task_partition, task_states

__all__ = ["count_change", "recount_tasks", "state_counts"]

state_counts = StateCounts(
    lambda state, n: TABLE_TASKS.labels(state=state).set(n), terminal=TERMINAL_STATES
)
_assigned_at = {"t": time.monotonic()}
RECOUNT_POLL_S = 0.1
_recounts: set[asyncio.Task[None]] = set()


def count_change(task_id: str, old: dict | None, new: dict | None) -> None:
    """A write (or removal, ``new`` None) of a task's state in the table."""
    state_counts.changed(
        task_id,
        old["state"] if old else None,
        new["state"] if new else None,
        new.get("updated_at") if new else None,
    )


@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _on_assigned(sender, assigned, **kwargs):  # type: ignore[no-untyped-def]
    _assigned_at["t"] = time.monotonic()


@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_recovered(sender, **kwargs):  # type: ignore[no-untyped-def]
    RECOVERY_SECONDS.set(time.monotonic() - _assigned_at["t"])
    # Partitions moved and the table was restored: count this worker's tasks again.
    for running in _recounts:  # counting partitions this worker may no longer have
        running.cancel()
    recount = asyncio.ensure_future(recount_tasks())
    _recounts.add(recount)
    recount.add_done_callback(_recounts.discard)


async def recount_tasks() -> None:
    """Count this worker's tasks by state, and index the finished ones, from the
    table (after each rebalance)."""
    # Faust signals the rebalance complete before it leaves recovery: returning
    # here then (as this did) left the counts and the index empty after a restart.
    while app.rebalancing or app.in_recovery:
        await asyncio.sleep(RECOUNT_POLL_S)
    await state_counts.recount(owned_items(task_states), _current_state, ALL_STATES)


def _current_state(task_id: str) -> str | None:
    if task_partition(task_id) not in owned_partitions():
        return None
    state = task_states.get(task_id)
    return state["state"] if state else None
