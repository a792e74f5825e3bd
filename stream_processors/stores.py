"""Where the task tables keep their data: Faust's RocksDB store, placing keys like the topics.

Faust's RocksDB store keeps one database per partition and puts a written key
in the partition of the event being processed; outside a stream (a timer, a
background future) it has no event and fails an assertion. The webhook
dispatcher and the expiry timer write outside any stream, so with that store
every recorded webhook attempt was lost and deliveries stayed ``pending``.
Here a key written outside a stream goes to its own partition: murmur2 of the
raw task id, the partition the producers chose and the one its changelog
record goes to (``tables.set_outside_stream``).
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2
from faust.stores import rocksdb
from faust.streams import current_event

__all__ = ["TaskRocksDBStore", "key_partition"]


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of a raw key: the Java client's murmur2 partitioner."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class TaskRocksDBStore(rocksdb.Store):
    """Faust's RocksDB store for tables keyed by task id, writable outside a stream."""

    def _set(self, key: bytes, value: bytes | None) -> None:
        event = current_event()
        if event is not None:
            # Inside the agent the changelog record goes to the event's partition.
            super()._set(key, value)
            return
        partition = key_partition(key, self.table.partitions or self.app.conf.topic_partitions)
        self._key_index[key] = partition
        self._db_for_partition(partition).put(key, value)
