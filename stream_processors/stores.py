"""Where the task tables keep their data: Faust's RocksDB store, placing keys like the topics.

Faust's RocksDB store keeps one database per partition and puts a written key
in the partition of the event being processed; outside a stream (a timer, a
background future) it has no event and fails an assertion. The webhook
dispatcher and the expiry timer write outside any stream, so with that store
every recorded webhook attempt was lost and deliveries stayed ``pending``.
Here a key written outside a stream goes to its own partition: murmur2 of the
raw task id, the partition the producers chose and the one its changelog
record goes to (``tables.set_outside_stream``).

A store may also keep the decoded values it last wrote or read, for the values
a predicate picks (the task-state table: tasks not yet finished, each read and
rewritten a few times within a second or so, then rarely again), bounded in
count. A value is never changed in place, so one object can answer every read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiokafka.partitioner import murmur2
from faust.stores import rocksdb
from faust.streams import current_event

__all__ = ["TaskRocksDBStore", "key_partition"]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of a raw key: the Java client's murmur2 partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class TaskRocksDBStore(rocksdb.Store):
    """Faust's RocksDB store for tables keyed by task id, writable outside a stream.

    With ``keep`` and ``kept_max``, the decoded values for which ``keep`` is true
    stay in memory (at most ``kept_max``, the oldest written or read leave first):
    such a read costs neither a RocksDB lookup nor a JSON decode. Everything that
    writes the databases without ``__setitem__`` (changelog recovery, standby
    replicas, partitions revoked) forgets what it touches.
    """

    def __init__(
        self,
        *args: Any,
        keep: Callable[[Any], bool] | None = None,
        kept_max: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._keep = keep if kept_max > 0 else None
        self._kept_max = kept_max
        self._kept: dict[bytes, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        if self._keep is None:
            return super().__getitem__(key)
        encoded = self._encode_key(key)
        value = self._kept.get(encoded)
        if value is None:
            raw = self._get(encoded)
            if raw is None:
                raise KeyError(key)
            value = self._decode_value(raw)
            self._remember(encoded, value)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._keep is None:
            return super().__setitem__(key, value)
        encoded = self._encode_key(key)
        self._set(encoded, self._encode_value(value))
        self._kept.pop(encoded, None)
        self._remember(encoded, value)
        return None

    def __delitem__(self, key: Any) -> None:
        encoded = self._encode_key(key)
        self._kept.pop(encoded, None)
        self._del(encoded)

    def _remember(self, encoded: bytes, value: Any) -> None:
        if self._keep is None or not self._keep(value):
            return
        if len(self._kept) >= self._kept_max:
            del self._kept[next(iter(self._kept))]
        self._kept[encoded] = value

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        events = list(batch)
        for event in events:
            self._kept.pop(event.message.key, None)
        super().apply_changelog_batch(events, to_key, to_value)

    def revoke_partitions(self, table: Any, tps: Any) -> None:
        self._kept.clear()
        super().revoke_partitions(table, tps)

    def reset_state(self) -> None:
        self._kept.clear()
        super().reset_state()

    def _set(self, key: bytes, value: bytes | None) -> None:
        event = current_event()
        if event is not None:
            # Inside the agent the changelog record goes to the event's partition.
            super()._set(key, value)
            return
        partition = self._partition_of(key)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)

    def _get(self, key: bytes) -> bytes | None:
        """Outside a stream (queries, timers), only the key's own partition is read:
        Faust's store tries the database of every partition for a key it has not
        seen yet, which made each query for an unknown or new task 6 lookups."""
        if current_event() is not None:
            return super()._get(key)  # type: ignore[no-any-return]
        partition = self._partition_of(key)
        db = self._dbs.get(partition)
        value = None if db is None else db.get(key)
        if value is not None:
            self._key_index[key] = partition  # as Faust's: a later delete finds the one database
        return value  # type: ignore[no-any-return]

    def _contains(self, key: bytes) -> bool:
        if current_event() is not None:
            return super()._contains(key)  # type: ignore[no-any-return]
        return self._get(key) is not None

    def _partition_of(self, key: bytes) -> int:
        return key_partition(key, self.table.partitions or self.app.conf.topic_partitions)
