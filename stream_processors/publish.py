"""Publishes task states to the public compacted task-state topic.

Sent with Faust's producer, which Faust flushes before it commits the source
offsets: a state change applied by the agent is published at least once, and
a replay publishes the same state again (harmless on a compacted topic). The
records go to the producer itself, not through ``Topic.send``: the key and value
are bytes already, and Faust's per-message future, callbacks and serializer
lookups were half the cost of publishing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from schemas.codec import codec_for
from schemas.headers import Headers as HeaderList
from schemas.headers import child_traceparent, event_headers, header_value
from stream_processors.app import app, processor_settings
from stream_processors.public_state import EVENT_TYPE, encode_state_changed
from stream_processors.topics import task_state_topic

__all__ = [
    "PRODUCER_NAME",
    "Headers",
    "learn_state_schema_id",
    "publish_state_change",
    "publish_tombstones",
    "state_schema_id_known",
]

PRODUCER_NAME = f"stream_processors/{app.conf.id}@{processor_settings.web_port}"

Headers = Sequence[tuple[str, bytes | None]] | Mapping[str, bytes | None] | None


async def publish_state_change(state: Mapping[str, Any], source_headers: Headers = None) -> None:
    """Queue a task's new state on the task-state topic, in the trace of its source event."""
    task_id = state["task_id"]
    trace = child_traceparent(header_value(_as_list(source_headers), "traceparent"))
    topic = task_state_topic.get_topic_name()
    await _send(task_id, encode_state_changed(state, topic), _headers(task_id, trace))


def learn_state_schema_id() -> None:
    """With a registry, the task-state topic's schema id (registered once, then
    cached), so that publishing needs no registry; raises SchemaRegistryError."""
    codec_for(EVENT_TYPE).learn_schema_id(task_state_topic.get_topic_name())


def state_schema_id_known() -> bool:
    """Whether ``learn_state_schema_id`` would answer without asking the registry."""
    return not codec_for(EVENT_TYPE).needs_registry(topic=task_state_topic.get_topic_name())


async def publish_tombstones(task_ids: Iterable[str]) -> None:
    """Publish a tombstone for each expired task and wait until the broker has them all.

    Waiting matters: the expiry timer removes a task from the table only after
    this, so a crash in between expires (and publishes) it again. A tombstone's
    headers still name the topic's schema and the task.
    """
    pending = [await _send(task_id, None, _headers(task_id, None)) for task_id in task_ids]
    if pending:
        await asyncio.gather(*pending)


async def _send(task_id: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> Any:
    """Queue one record of the task-state topic; the answer resolves once the broker has it."""
    return await app.producer.send(
        task_state_topic.get_topic_name(), task_id.encode(), value, None, None, headers
    )


def _headers(task_id: str, traceparent: str | None) -> list[tuple[str, bytes]]:
    codec = codec_for(EVENT_TYPE)
    headers = event_headers(codec.schema, task_id, PRODUCER_NAME, traceparent, codec.content_type)
    return cast(list[tuple[str, bytes]], headers)  # event_headers encodes every value


def _as_list(headers: Headers) -> HeaderList:
    if headers is None:
        return []
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)
