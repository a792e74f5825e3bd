"""The task tables on RocksDB: writable from timers, and intact after a SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest

from stream_processors.config import ProcessorSettings
from stream_processors.stores import TaskRocksDBStore, key_partition
from stream_processors.tables import TaskTable

TASK_ID = "6f1c2f8e-1d4b-4c53-9f3e-2a1b0c9d8e7f"
PARTITIONS = 6
# Builds the same table in a child process: writes the way a timer does, then dies by SIGKILL.
WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import faust
    from stream_processors.tables import TaskTable
    app = faust.App("store-test", store="rocksdb://", datadir=sys.argv[1], autodiscover=False)
    table = TaskTable(
        app, name="webhook-deliveries", default=None, key_type=str, partitions={partitions},
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    )
    for n in range(500):
        table.data[f"task-{{n}}"] = {{"status": "pending", "n": n}}
    table.data[sys.argv[2]] = {{"status": "delivered"}}
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def deliveries_table(
    data_dir: str | Path, store: str = "rocksdb://", name: str = "webhook-deliveries", **kept: Any
) -> TaskTable:
    """A task table like ``webhook_deliveries`` (or, with ``kept``, ``task_states``),
    on its own app and data dir."""
    app = faust.App("store-test", store=store, datadir=str(data_dir), autodiscover=False)
    return TaskTable(
        app,
        name=name,
        default=None,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        partitions=PARTITIONS,
        **kept,
    )


def test_rocksdb_is_the_default_store_and_memory_stays_selectable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROCESSOR_STORE", raising=False)
    assert ProcessorSettings().store == "rocksdb://"
    monkeypatch.setenv("PROCESSOR_STORE", "memory://")
    assert ProcessorSettings().store == "memory://"


def test_task_tables_get_the_store_writable_outside_a_stream(tmp_path: Path) -> None:
    assert isinstance(deliveries_table(tmp_path).data, TaskRocksDBStore)
    assert not isinstance(deliveries_table(tmp_path, "memory://").data, TaskRocksDBStore)


def test_a_write_outside_a_stream_lands_in_the_tasks_partition(tmp_path: Path) -> None:
    """Faust's own RocksDB store asserts an event is being processed: a webhook
    attempt recorded from the dispatcher's timer was lost."""
    store = deliveries_table(tmp_path).data
    store[TASK_ID] = {"status": "delivered"}
    assert store[TASK_ID] == {"status": "delivered"}
    assert set(store._dbs) == {key_partition(TASK_ID.encode(), PARTITIONS)}
    del store[TASK_ID]
    assert TASK_ID not in store


def test_get_reads_the_store_once_and_answers_none_for_a_missing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = deliveries_table(tmp_path)
    table.data[TASK_ID] = {"status": "delivered"}
    reads: list[bytes] = []
    real_get = table.data._get
    monkeypatch.setattr(table.data, "_get", lambda key: reads.append(key) or real_get(key))
    monkeypatch.setattr(table.data, "_contains", lambda key: pytest.fail("a second lookup"))
    assert table.get(TASK_ID) == {"status": "delivered"}
    assert table.get("unknown") is None
    assert table.get("unknown", {}) == {}
    assert reads == [TASK_ID.encode(), b"unknown", b"unknown"]


def test_a_sigkilled_writer_leaves_a_store_that_reopens_with_its_writes(tmp_path: Path) -> None:
    """The kernel drops RocksDB's LOCK with the process and the write-ahead log
    replays on open, so a restart in the same data dir finds every write."""
    writer = subprocess.run(
        [sys.executable, "-c", WRITER.format(partitions=PARTITIONS), str(tmp_path), TASK_ID],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert writer.returncode == -9, writer.stderr
    store = deliveries_table(tmp_path).data
    for partition in range(PARTITIONS):
        store._db_for_partition(partition)  # what a recovery does for its partitions
    assert store[TASK_ID] == {"status": "delivered"}
    assert store["task-499"] == {"status": "pending", "n": 499}


def test_each_rocksdb_database_of_the_task_tables_has_bounded_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's own sizes (3 write buffers of 64 MiB, a 2 GiB block cache) are per
    database, and there is one per table and partition: the processor grew with
    its table. The settings bound them; each table gets options of its own."""
    from stream_processors.tables import expired_tasks, task_states

    mib = 1024 * 1024
    for table in (task_states, expired_tasks):
        options = table._new_store_by_url("rocksdb://").rocksdb_options
        assert (options.write_buffer_size, options.max_write_buffer_number) == (4 * mib, 2)
        assert options.block_cache_size == options.block_cache_compressed_size == 8 * mib
    assert task_states.options is not expired_tasks.options
    monkeypatch.setenv("PROCESSOR_ROCKSDB_WRITE_BUFFER_MIB", "16")
    monkeypatch.setenv("PROCESSOR_ROCKSDB_BLOCK_CACHE_MIB", "64")
    sized = ProcessorSettings().rocksdb_options()
    assert (sized["write_buffer_size"], sized["block_cache_size"]) == (16 * mib, 64 * mib)


def kept_table(data_dir: str | Path, kept_max: int = 2) -> TaskTable:
    """A task table keeping unfinished values in memory, as ``task_states`` does."""
    return deliveries_table(
        data_dir,
        name="task-state",
        keep_values=lambda value: value["state"] != "SUCCESS",
        kept_max=kept_max,
    )


def _count_reads(store: TaskRocksDBStore, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    reads: list[bytes] = []
    real_get = store._get
    monkeypatch.setattr(store, "_get", lambda key: reads.append(key) or real_get(key))
    return reads


def test_unfinished_values_are_read_from_memory_and_finished_ones_from_rocksdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = kept_table(tmp_path)
    store = table.data
    reads = _count_reads(store, monkeypatch)
    store[TASK_ID] = {"state": "RUNNING"}
    assert table.get(TASK_ID) == {"state": "RUNNING"}
    assert table.get(TASK_ID) is table.get(TASK_ID)  # one decoded value answers every read
    assert reads == []
    store[TASK_ID] = {"state": "SUCCESS"}
    assert table.get(TASK_ID) == {"state": "SUCCESS"}
    assert table.get(TASK_ID) == {"state": "SUCCESS"}
    assert reads == [TASK_ID.encode()] * 2
    assert TASK_ID.encode() not in store._kept
    del store[TASK_ID]
    assert table.get(TASK_ID) is None


def test_memory_keeps_at_most_kept_max_values_and_rocksdb_keeps_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = kept_table(tmp_path, kept_max=2)
    store = table.data
    for n in range(3):
        store[f"task-{n}"] = {"state": "PENDING", "n": n}
    assert list(store._kept) == [b"task-1", b"task-2"]  # the oldest left first
    reads = _count_reads(store, monkeypatch)
    assert table.get("task-0") == {"state": "PENDING", "n": 0}  # from RocksDB, kept again
    assert reads == [b"task-0"]
    assert list(store._kept) == [b"task-2", b"task-0"]


def test_writes_that_bypass_the_table_are_not_answered_from_memory(tmp_path: Path) -> None:
    """A standby replica or a recovery applies changelog records straight to
    RocksDB; a revoked partition may come back with other writes applied."""
    table = kept_table(tmp_path)
    store = table.data
    store[TASK_ID] = {"state": "PENDING"}
    partition = key_partition(TASK_ID.encode(), PARTITIONS)
    record = SimpleNamespace(
        key=TASK_ID.encode(),
        value=b'{"state": "RUNNING"}',
        partition=partition,
        tp=faust.types.TP("store-test-task-state-changelog", partition),
        offset=7,
    )
    store.apply_changelog_batch([SimpleNamespace(message=record)], None, None)
    assert table.get(TASK_ID) == {"state": "RUNNING"}
    store[TASK_ID] = {"state": "RUNNING", "progress": 0.5}
    store.revoke_partitions(table, set())
    assert store._kept == {}
    assert table.get(TASK_ID) == {"state": "RUNNING", "progress": 0.5}


def test_the_task_state_table_keeps_unfinished_states_in_memory() -> None:
    from stream_processors.tables import expired_tasks, task_states

    store = task_states._new_store_by_url("rocksdb://")
    assert store._kept_max == ProcessorSettings().unfinished_states_in_memory > 0
    assert store._keep is not None
    assert store._keep({"state": "RUNNING"}) and not store._keep({"state": "FAILED"})
    assert expired_tasks._new_store_by_url("rocksdb://")._keep is None


class _CountingDb:
    """A partition's database that records the keys read from it."""

    def __init__(self, db: object, reads: list[tuple[int, bytes]], partition: int) -> None:
        self.db, self.reads, self.partition = db, reads, partition

    def get(self, key: bytes) -> bytes | None:
        self.reads.append((self.partition, key))
        return self.db.get(key)  # type: ignore[attr-defined, no-any-return]

    def key_may_exist(self, key: bytes) -> bool:
        self.reads.append((self.partition, key))
        return self.db.key_may_exist(key)  # type: ignore[attr-defined, no-any-return]


def test_a_read_outside_a_stream_looks_in_the_keys_partition_only(tmp_path: Path) -> None:
    """Faust's store tried every partition's database for a key it had not seen:
    each query for a task not in the table yet was one lookup per partition."""
    store = deliveries_table(tmp_path).data
    for n in range(40):  # a database for every partition
        store[f"task-{n}"] = {"n": n}
    assert set(store._dbs) == set(range(PARTITIONS))
    reads: list[tuple[int, bytes]] = []
    store._dbs = {p: _CountingDb(db, reads, p) for p, db in store._dbs.items()}
    store._key_index.clear()
    assert store.get(TASK_ID) is None
    assert TASK_ID not in store
    assert store["task-7"] == {"n": 7}
    own = key_partition(TASK_ID.encode(), PARTITIONS)
    assert reads == [(own, TASK_ID.encode())] * 2 + [
        (key_partition(b"task-7", PARTITIONS), b"task-7")
    ]
    # A key read is indexed, as Faust's store does: its delete goes to its one database.
    assert store._key_index[b"task-7"] == key_partition(b"task-7", PARTITIONS)
