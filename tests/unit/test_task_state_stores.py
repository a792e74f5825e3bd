"""The task tables on RocksDB: writable from timers, and intact after a SIGKILL."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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


def deliveries_table(data_dir: str | Path, store: str = "rocksdb://") -> TaskTable:
    """A task table like ``webhook_deliveries``, on its own app and data dir."""
    app = faust.App("store-test", store=store, datadir=str(data_dir), autodiscover=False)
    return TaskTable(
        app,
        name="webhook-deliveries",
        default=None,
        key_type=str,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
        partitions=PARTITIONS,
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
