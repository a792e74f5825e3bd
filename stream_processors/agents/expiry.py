"""Expires finished tasks: a periodic timer on every Faust worker.

Each worker looks only at the partitions it owns (active, not standby). An
expired task is first tombstoned on the public task-state topic (waiting for
the broker), then remembered in ``expired_tasks`` and deleted from the table,
which writes a tombstone to the table's changelog. Expired ids are forgotten
after their own retention, so that table stays bounded.
"""

from __future__ import annotations

import logging

from asyncarch.clock import now_ms
from stream_processors.agents.table_metrics import count_change, state_counts
from stream_processors.app import app, processor_settings
from stream_processors.publish import publish_tombstones
from stream_processors.retention import (
    RetentionPolicy,
    expired_ids_to_forget,
    finished_to_expire,
    tasks_to_expire,
)
from stream_processors.tables import (
    delete_outside_stream,
    expired_tasks,
    owned_items,
    owned_partitions,
    set_outside_stream,
    task_partition,
    task_states,
    webhook_deliveries,
)

__all__ = ["expire_finished_tasks"]

log = logging.getLogger(__name__)

POLICY = RetentionPolicy(
    task_ttl_ms=int(processor_settings.task_ttl_s * 1000),
    expired_ids_retention_ms=int(processor_settings.expired_ids_retention_s * 1000),
    expired_ids_max=processor_settings.expired_ids_max,
    batch_max=processor_settings.expiry_batch_max,
)


@app.timer(interval=processor_settings.expiry_interval_s)
async def expire_finished_tasks() -> None:
    """Remove this worker's tasks that finished more than the TTL ago.

    Candidates come from the live index of finished tasks (``state_counts``), not
    from a scan of the table; each is read back and checked before it goes, so an
    index entry that is stale (a partition moved, a recount under way) only
    delays an expiry, never makes a wrong one."""
    if app.rebalancing or app.in_recovery:
        return
    now = now_ms()
    candidates = finished_to_expire(state_counts.finished(), now, POLICY)
    owned = owned_partitions()
    due = tasks_to_expire(
        (
            (task_id, task_states.get(task_id))
            for task_id in candidates
            if task_partition(task_id) in owned
        ),
        now,
        POLICY,
    )
    if due:
        await publish_tombstones(due)
        _remove(due, now)
    expired = {task_id: at async for task_id, at in owned_items(expired_tasks)}
    for task_id in expired_ids_to_forget(expired, now, POLICY):
        delete_outside_stream(expired_tasks, task_id)


def _remove(task_ids: list[str], now_ms: int) -> None:
    owned = owned_partitions()  # a rebalance may have moved partitions meanwhile
    for task_id in task_ids:
        if task_partition(task_id) in owned:
            set_outside_stream(expired_tasks, task_id, now_ms)
            count_change(task_id, task_states.get(task_id), None)
            delete_outside_stream(task_states, task_id)
            if task_id in webhook_deliveries:  # a pending delivery stops with its task
                delete_outside_stream(webhook_deliveries, task_id)
            log.info("task expired", extra={"task_id": task_id})
