"""The one place that encodes and decodes events.

Events are Avro records framed with Avro single-object encoding: the two
marker bytes ``C3 01``, the 8-byte little-endian CRC-64-AVRO fingerprint of
the writer schema's canonical form, then the Avro binary body. A reader finds
the writer schema by its fingerprint among the ``.avsc`` files in this folder
(current versions and the old ones kept in ``history/``) and resolves it
against its own reader schema, so old and new readers read each other's events.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.exceptions import EventDecodeError, EventEncodeError, SchemaError

__all__ = [
    "SCHEMA_DIR",
    "AvroCodec",
    "EventSchema",
    "codec_for",
    "load_schema",
]

SCHEMA_DIR = Path(__file__).resolve().parent
SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_HEADER_LEN = len(SINGLE_OBJECT_MARKER) + 8

SCHEMA_FILES = {
    "TaskRequest": "task_request.avsc",
    "TaskStatus": "task_status.avsc",
    "TaskResult": "task_result.avsc",
    "DeadLetter": "dead_letter.avsc",
    "TaskStateChanged": "task_state.avsc",
}


@dataclass(frozen=True)
class EventSchema:
    """A parsed Avro schema with its single-object fingerprint."""

    name: str
    parsed: Any = field(repr=False)
    fingerprint: bytes

    @property
    def version(self) -> str:
        """The fingerprint as hex: the schema version named in headers."""
        return self.fingerprint.hex()

    @classmethod
    def from_json(cls, raw: Any) -> EventSchema:
        """Parse a schema from its JSON form."""
        try:
            parsed = parse_schema(raw, _write_hint=False)
            canonical = to_parsing_canonical_form(raw)
        except Exception as exc:  # fastavro raises several unrelated types
            raise SchemaError(f"invalid Avro schema: {exc}") from exc
        # fastavro returns the fingerprint's little-endian bytes as hex, as the spec frames it
        digest = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
        name = (
            f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
            if isinstance(raw, dict)
            else str(raw)
        )
        return cls(name=name, parsed=parsed, fingerprint=digest)

    @classmethod
    def from_file(cls, path: Path) -> EventSchema:
        """Parse a schema from an ``.avsc`` file."""
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise SchemaError(f"cannot read schema {path}: {exc}") from exc


def load_schema(event_type: str) -> EventSchema:
    """The current schema of an event type (TaskRequest, TaskStatus, ...)."""
    try:
        return EventSchema.from_file(SCHEMA_DIR / SCHEMA_FILES[event_type])
    except KeyError as exc:
        raise SchemaError(f"unknown event type {event_type!r}") from exc


@cache
def known_writer_schemas() -> tuple[EventSchema, ...]:
    """Every schema version this codebase can read: current and historical."""
    paths = sorted(SCHEMA_DIR.glob("*.avsc")) + sorted(SCHEMA_DIR.glob("history/*.avsc"))
    return tuple(EventSchema.from_file(path) for path in paths)


class AvroCodec:
    """Encodes with one schema; decodes any known writer schema into it."""

    def __init__(self, reader: EventSchema, writers: tuple[EventSchema, ...] = ()) -> None:
        self.schema = reader
        self._writers = {w.fingerprint: w for w in (*writers, reader)}

    def encode(self, record: dict[str, Any]) -> bytes:
        """Encode a record as an Avro single-object message."""
        buffer = io.BytesIO()
        buffer.write(SINGLE_OBJECT_MARKER + self.schema.fingerprint)
        try:
            fastavro.schemaless_writer(
                buffer, self.schema.parsed, record, strict_allow_default=True
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EventEncodeError(f"{self.schema.name}: {exc}") from exc
        return buffer.getvalue()

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode a single-object message written with any known schema version."""
        writer = self._writer_of(data)
        assert data is not None
        try:
            record = fastavro.schemaless_reader(
                io.BytesIO(data[_HEADER_LEN:]), writer.parsed, self.schema.parsed
            )
        except Exception as exc:  # truncated or garbage bodies raise many types
            raise EventDecodeError(f"{self.schema.name}: body does not decode: {exc}") from exc
        if not isinstance(record, dict):
            raise EventDecodeError(f"{self.schema.name}: not a record")
        return record

    def _writer_of(self, data: bytes | None) -> EventSchema:
        if not data:
            raise EventDecodeError(f"{self.schema.name}: empty message")
        if data[:1] == CONFLUENT_MAGIC:
            raise EventDecodeError("Confluent-framed message but no schema registry is configured")
        if data[:2] != SINGLE_OBJECT_MARKER or len(data) < _HEADER_LEN:
            raise EventDecodeError(f"{self.schema.name}: not an Avro single-object message")
        writer = self._writers.get(data[2:_HEADER_LEN])
        if writer is None:
            raise EventDecodeError(
                f"{self.schema.name}: unknown writer schema fingerprint {data[2:_HEADER_LEN].hex()}"
            )
        return writer


@cache
def codec_for(event_type: str) -> AvroCodec:
    """The codec of an event type, able to read every known version of it."""
    return AvroCodec(load_schema(event_type), known_writer_schemas())
