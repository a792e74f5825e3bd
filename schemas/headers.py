"""Kafka headers every event carries, readable by a person in Kafka UI."""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from schemas.codec import SINGLE_OBJECT_CONTENT_TYPE, EventSchema

__all__ = ["child_traceparent", "event_headers", "header_value", "new_traceparent"]

Headers = list[tuple[str, str | bytes | None]]
CONTENT_TYPE = SINGLE_OBJECT_CONTENT_TYPE


def new_traceparent() -> str:
    """A fresh W3C trace context ``traceparent`` (version 00, sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A traceparent in the same trace as ``parent``, with a new span id."""
    parts = (parent or "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return new_traceparent()
    return f"00-{parts[1]}-{secrets.token_hex(8)}-{parts[3]}"


def event_headers(
    schema: EventSchema,
    task_id: str,
    producer: str,
    traceparent: str | None = None,
    content_type: str = CONTENT_TYPE,
) -> Headers:
    """Headers naming the event type, schema and version, framing, task, producer and trace.

    ``content_type`` is the codec's (``AvroCodec.content_type``): it names the framing.
    """
    values = {
        "event-type": schema.name.rsplit(".", 1)[-1],
        "schema-name": schema.name,
        "schema-version": schema.version,
        "content-type": content_type,
        "task-id": task_id,
        "producer": producer,
        "traceparent": traceparent or new_traceparent(),
    }
    return [(key, value.encode()) for key, value in values.items()]


def header_value(headers: Headers | dict[str, str | bytes | None] | None, name: str) -> str | None:
    """The text of the first header called ``name``, or None."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    for key, value in pairs:
        if key == name and value is not None:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return None
