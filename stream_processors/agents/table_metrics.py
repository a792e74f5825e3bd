"""Periodic gauges of the table: tasks by state, and how long the last recovery took."""

from __future__ import annotations

import time
from collections import Counter

from stream_processors.app import app
from stream_processors.metrics import RECOVERY_SECONDS, TABLE_TASKS
from stream_processors.state_machine import ALL_STATES
from stream_processors.tables import owned_items, task_states

__all__ = ["measure_table"]

TABLE_METRICS_INTERVAL_S = 15.0
_assigned_at = {"t": time.monotonic()}


@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _on_assigned(sender, assigned, **kwargs):  # type: ignore[no-untyped-def]
    _assigned_at["t"] = time.monotonic()


@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_recovered(sender, **kwargs):  # type: ignore[no-untyped-def]
    RECOVERY_SECONDS.set(time.monotonic() - _assigned_at["t"])


@app.timer(interval=TABLE_METRICS_INTERVAL_S)
async def measure_table() -> None:
    """Count this worker's tasks by state (a snapshot of its partitions)."""
    if app.rebalancing or app.in_recovery:
        return
    counts = Counter([state["state"] async for _, state in owned_items(task_states)])
    for state in ALL_STATES:
        TABLE_TASKS.labels(state=state).set(counts.get(state, 0))
