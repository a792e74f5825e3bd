"""The task-state table: the one place the pipeline's state is materialised.

Beside it, a small table of recently expired task ids (mapped to when they
expired, epoch ms), so a query for an expired task answers 410 rather than 404,
and the result deliveries of finished tasks, webhooks and sinks
(``stream_processors.delivery``; the table keeps its first name, and its changelog).
All are keyed by task id and co-partitioned with the task topics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
from faust.types import StoreT
from yarl import URL

from schemas.states import TERMINAL_STATES
from stream_processors.app import app, processor_settings, topic_settings
from stream_processors.stores import TaskRocksDBStore, key_partition

__all__ = [
    "SCAN_CHUNK",
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

    On RocksDB, the values ``keep_values`` picks stay decoded in memory, at most
    ``kept_max`` (see ``TaskRocksDBStore``).
    """

    def __init__(
        self,
        *args: Any,
        keep_values: Callable[[Any], bool] | None = None,
        kept_max: int = 0,
        **kwargs: Any,
    ) -> None:
        self.keep_values = keep_values
        self.kept_max = kept_max
        super().__init__(*args, **kwargs)

    def get(self, key: Any, default: Any = None) -> Any:
        """The key's value, in one store lookup. Faust's ``get`` asks the store
        whether it holds the key, then reads it: on RocksDB two reads and a second
        key encoding (a similarity task's state: 87 µs, 67 µs this way). The tables
        here have no default value, so a missing key is ``default``."""
        value = self.data.get(key)
        return default if value is None else value

    def _serializer_from_type(self, typ: Any) -> Any:
        return "raw" if typ is str else super()._serializer_from_type(typ)

    def _new_store_by_url(self, url: str | URL) -> StoreT:
        """Faust's own store, except that ``rocksdb://`` is the one writable from timers."""
        if URL(str(url)).scheme != "rocksdb":
            return super()._new_store_by_url(url)
        return TaskRocksDBStore(
            url,
            self.app,
            self,
            table_name=self.name,
            key_type=self.key_type,
            key_serializer=self.key_serializer,
            value_serializer=self.value_serializer,
            value_type=self.value_type,
            loop=self.loop,
            options=self.options,
            keep=self.keep_values,
            kept_max=self.kept_max,
        )


def _task_table(name: str, help: str, **kept: Any) -> TaskTable:
    table = TaskTable(
        app,
        name=name,
        default=None,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        partitions=topic_settings.partitions,
        # A dict per table: Faust's store takes keys out of the one it is given.
        options=processor_settings.rocksdb_options(),
        beacon=app.tables.beacon,
        help=help,
        **kept,
    )
    app.tables.add(table)
    return table


# Entries a table scan reads between two turns of the event loop.
SCAN_CHUNK = 100


def _unfinished(state: Any) -> bool:
    return state.get("state") not in TERMINAL_STATES


# A task not yet finished is read and rewritten a few times within a second or so
# (each event, each query): its state stays decoded in memory. A finished one is
# read once more by its long-poll, which the write hands its state (``waiters``).
task_states = _task_table(
    "task-state",
    "Latest state of every task, keyed by task id",
    keep_values=_unfinished,
    kept_max=processor_settings.unfinished_states_in_memory,
)
expired_tasks = _task_table(
    "expired-tasks", "When each recently expired task expired (epoch ms), keyed by task id"
)
webhook_deliveries = _task_table(
    "webhook-deliveries",
    "Result deliveries (webhook, sink) of each finished task with callback_url or deliver_to",
)


def task_partition(task_id: str) -> int:
    """The partition of a task in every task topic and table changelog.

    Every producer uses the Java client's murmur2 partitioner on the task id.
    """
    return key_partition(task_id.encode(), topic_settings.partitions)


async def owned_items(table: faust.Table) -> AsyncIterator[tuple[str, Any]]:
    """The entries of ``table`` in partitions this worker owns.

    The ids are a snapshot (the agent may add tasks meanwhile); each value is
    read when its turn comes, and the event loop gets a turn every
    ``SCAN_CHUNK`` entries: on RocksDB each value is read and decoded from
    disk, and a scan of thousands of states in one go stalled every query and
    heartbeat of the worker for seconds.
    """
    owned = owned_partitions()
    task_ids = [task_id for task_id in table.data if task_partition(task_id) in owned]
    for count, task_id in enumerate(task_ids, 1):
        value = table.data.get(task_id)
        if value is not None:
            yield task_id, value
        if count % SCAN_CHUNK == 0:
            await asyncio.sleep(0)


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
