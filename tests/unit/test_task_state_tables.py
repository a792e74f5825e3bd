"""The task tables are keyed like the task topics, so table routing finds a task's owner."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2

from stream_processors.app import app
from stream_processors.config import ProcessorSettings
from stream_processors.tables import expired_tasks, task_partition, task_states

TASK_ID = "6f1c2f8e-1d4b-4c53-9f3e-2a1b0c9d8e7f"


@pytest.mark.parametrize("table", [task_states, expired_tasks], ids=lambda t: t.name)
def test_changelog_keys_are_the_raw_task_id_and_values_json(table) -> None:  # type: ignore[no-untyped-def]
    key = table.changelog_topic.prepare_key(TASK_ID, None)[0]
    assert key == TASK_ID.encode()
    value = table.changelog_topic.prepare_value({"state": "SUCCESS"}, None)[0]
    assert value == b'{"state":"SUCCESS"}'


def test_routing_hashes_the_same_bytes_as_the_producers() -> None:
    routed = app.router._get_serialized_key(task_states, TASK_ID)
    assert routed == TASK_ID.encode()
    partitions = task_states.partitions
    assert task_partition(TASK_ID) == (murmur2(routed) & 0x7FFFFFFF) % partitions


def test_retention_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ProcessorSettings().task_ttl_s == 7 * 24 * 3600
    monkeypatch.setenv("PROCESSOR_TASK_TTL_S", "3")
    monkeypatch.setenv("PROCESSOR_EXPIRY_INTERVAL_S", "0.5")
    settings = ProcessorSettings()
    assert (settings.task_ttl_s, settings.expiry_interval_s) == (3.0, 0.5)
