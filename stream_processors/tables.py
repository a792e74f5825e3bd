"""The task-state table: the one place the pipeline's state is materialised.

Beside it, a small table of recently expired task ids (mapped to when they
expired, epoch ms), so a query for an expired task answers 410 rather than 404,
and the webhook deliveries of finished tasks (``stream_processors.webhooks``).
All are keyed by task id and co-partitioned with the task topics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust
from aiokafka.partitioner import murmur2

from stream_processors.app import app, topic_settings

__all__ = [
    "TaskTable",
    "delete_outside_stream",
    "expired_tasks",
    "owned_items",
    "owned_partitions",
    "set_outside_stream",
    "task_partition",
    "task_states",
    "webhook_deliveries",
]


class TaskTable(faust.Table):
    """A table keyed by task id whose changelog keys are the raw id, as in every task topic.

    Faust derives a table's key serializer from its key type, json for ``str``:
    the changelog would hold ``"<id>"`` and table routing would hash that, not
    the id the producers hashed, so queries went to a worker not owning the task.
    """

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is str else super()._serializer_from_type(typ)


def _task_table(name: str, help: str) -> TaskTable:
    table = TaskTable(
        app,
        name=name,
        default=None,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        partitions=topic_settings.partitions,
        beacon=app.tables.beacon,
        help=help,
    )
    app.tables.add(table)
    return table


task_states = _task_table("task-state", "Latest state of every task, keyed by task id")
expired_tasks = _task_table(
    "expired-tasks", "When each recently expired task expired (epoch ms), keyed by task id"
)
webhook_deliveries = _task_table(
    "webhook-deliveries", "Webhook delivery of each finished task with a callback_url"
)


def task_partition(task_id: str) -> int:
    """The partition of a task in every task topic and table changelog.

    Every producer uses the Java client's murmur2 partitioner on the task id.
    """
    return (murmur2(task_id.encode()) & 0x7FFFFFFF) % topic_settings.partitions


def owned_items(table: faust.Table) -> Iterator[tuple[str, Any]]:
    """The entries of ``table`` in partitions this worker owns, from a snapshot
    (the agent may add tasks while the caller works through them)."""
    owned = owned_partitions()
    for task_id, value in list(table.data.items()):
        if task_partition(task_id) in owned:
            yield task_id, value


def owned_partitions() -> set[int]:
    """Partitions of the task topics (and tables) this worker owns right now."""
    return {
        tp.partition
        for tp in app.assignor.assigned_actives()
        if tp.topic == topic_settings.requests
    }


def set_outside_stream(table: faust.Table, task_id: str, value: Any) -> None:
    """``table[task_id] = value`` from a timer, where no event names the partition.

    Faust takes a key's changelog partition from the event being processed;
    outside a stream it is the task's partition, given explicitly.
    """
    table.send_changelog(task_partition(task_id), task_id, value)
    table.data[task_id] = value


def delete_outside_stream(table: faust.Table, task_id: str) -> None:
    """``del table[task_id]`` from a timer: a tombstone on the task's changelog partition."""
    table.send_changelog(task_partition(task_id), task_id, None, value_serializer="raw")
    table.data.pop(task_id, None)
