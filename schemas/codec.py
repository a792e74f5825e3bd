"""The one place that encodes and decodes events.

Events are Avro records in one of two framings:

- the Confluent wire format when a schema registry is configured
  (``SCHEMA_REGISTRY_URL``): the magic byte ``00``, the 4-byte big-endian id
  of the writer schema in the registry, then the Avro binary body. The
  schema is registered under ``<topic>-value``, so Kafka UI and any Confluent
  client decode the events;
- otherwise Avro single-object encoding: the two marker bytes ``C3 01``, the
  8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
  canonical form, then the body.

A reader accepts both. It finds the writer schema by its registry id (asking
the registry once per id) or by its fingerprint among the ``.avsc`` files in
this folder (current versions and the old ones kept in ``history/``), and
resolves it against its own reader schema, so old and new readers read each
other's events.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from schemas.binary import Unfit, compile_reader, compile_writer
from schemas.exceptions import EventDecodeError, EventEncodeError, SchemaError
from schemas.registry import SchemaRegistry, configured_registry, value_subject

__all__ = [
    "CONFLUENT_CONTENT_TYPE",
    "SCHEMA_DIR",
    "SINGLE_OBJECT_CONTENT_TYPE",
    "AvroCodec",
    "EventSchema",
    "codec_for",
    "load_schema",
]

SCHEMA_DIR = Path(__file__).resolve().parent
SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_HEADER_LEN = len(SINGLE_OBJECT_MARKER) + 8
SINGLE_OBJECT_CONTENT_TYPE = "application/vnd.apache.avro+binary; framing=single-object"
CONFLUENT_CONTENT_TYPE = "application/vnd.apache.avro+binary; framing=confluent"
_SCHEMA_ID = struct.Struct(">I")
_CONFLUENT_HEADER_LEN = len(CONFLUENT_MAGIC) + _SCHEMA_ID.size

SCHEMA_FILES = {
    "TaskRequest": "task_request.avsc",
    "TaskStatus": "task_status.avsc",
    "TaskResult": "task_result.avsc",
    "DeadLetter": "dead_letter.avsc",
    "TaskStateChanged": "task_state.avsc",
}


@dataclass(frozen=True)
class EventSchema:
    """A parsed Avro schema with its single-object fingerprint and its JSON text."""

    name: str
    parsed: Any = field(repr=False)
    fingerprint: bytes
    text: str = field(default="", repr=False, compare=False)

    @property
    def version(self) -> str:
        """The fingerprint as hex: the schema version named in headers."""
        return self.fingerprint.hex()

    @classmethod
    def from_json(cls, raw: Any) -> EventSchema:
        """Parse a schema from its JSON form."""
        try:
            # Parsed with fastavro's hint: without it every read and write parsed the
            # schema again, half the cost of encoding a small event.
            parsed = parse_schema(raw)
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
        return cls(name=name, parsed=parsed, fingerprint=digest, text=json.dumps(raw))

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


def record_union_branches(parsed: Any) -> dict[str, dict[frozenset[str], str]]:
    """For each top-level field of ``parsed`` whose type is a union holding records:
    the set of field names of each record branch, mapped to the branch's full name.
    A set that two branches share is left out (it cannot tell them apart)."""
    unions: dict[str, dict[frozenset[str], str]] = {}
    for field_ in parsed.get("fields", []) if isinstance(parsed, dict) else []:
        branches = field_["type"] if isinstance(field_["type"], list) else []
        records = [b for b in branches if isinstance(b, dict) and b.get("type") == "record"]
        keys = [frozenset(f["name"] for f in r["fields"]) for r in records]
        unique = {k: r["name"] for k, r in zip(keys, records, strict=True) if keys.count(k) == 1}
        if unique:
            unions[field_["name"]] = unique
    return unions


@cache
def known_writer_schemas() -> tuple[EventSchema, ...]:
    """Every schema version this codebase can read: current and historical."""
    paths = sorted(SCHEMA_DIR.glob("*.avsc")) + sorted(SCHEMA_DIR.glob("history/*.avsc"))
    return tuple(EventSchema.from_file(path) for path in paths)


class AvroCodec:
    """Encodes with one schema; decodes any known or registered writer schema into it."""

    def __init__(
        self,
        reader: EventSchema,
        writers: tuple[EventSchema, ...] = (),
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.schema = reader
        self.registry = registry
        self._writers = {w.fingerprint: w for w in (*writers, reader)}
        self._registered: dict[int, EventSchema] = {}
        self._union_branches = record_union_branches(reader.parsed)
        # Events written with this very schema (all of ours but old versions) skip
        # fastavro's per-value dispatch: see schemas/binary.py.
        self._read_own = compile_reader(reader.parsed)
        self._write_own = compile_writer(reader.parsed)

    @property
    def content_type(self) -> str:
        """The ``content-type`` header of what ``encode`` writes: which framing."""
        return SINGLE_OBJECT_CONTENT_TYPE if self.registry is None else CONFLUENT_CONTENT_TYPE

    def encode(self, record: dict[str, Any], topic: str | None = None) -> bytes:
        """Encode a record for a topic: Confluent-framed with a registry, else single-object.

        With a registry the topic names the subject, so it is required.
        """
        body = self._body(record)
        if self.registry is None:
            return SINGLE_OBJECT_MARKER + self.schema.fingerprint + body
        if topic is None:
            raise EventEncodeError(f"{self.schema.name}: a registry subject needs the topic")
        schema_id = self.learn_schema_id(topic)
        assert schema_id is not None
        return CONFLUENT_MAGIC + _SCHEMA_ID.pack(schema_id) + body

    def learn_schema_id(self, topic: str) -> int | None:
        """Register (or look up) this schema under the topic's subject now, so that
        ``encode`` for the topic needs no registry later; None without a registry.
        Raises SchemaRegistryError while the registry is unavailable."""
        if self.registry is None:
            return None
        return self.registry.schema_id(value_subject(topic), self.schema.text)

    def needs_registry(self, data: bytes | None = None, topic: str | None = None) -> bool:
        """Whether ``decode(data)`` or ``encode(..., topic)`` would ask the registry now
        (a writer schema id, or this schema's id under the topic, not yet cached).
        An event loop hands such a call to a thread: the registry may take its whole
        timeout to answer."""
        if self.registry is None:
            return False
        if data and data[:1] == CONFLUENT_MAGIC and len(data) >= _CONFLUENT_HEADER_LEN:
            (schema_id,) = _SCHEMA_ID.unpack_from(data, len(CONFLUENT_MAGIC))
            if schema_id not in self._registered:
                return True
        return topic is not None and not self.registry.knows_id(
            value_subject(topic), self.schema.text
        )

    def decode(self, data: bytes | None) -> dict[str, Any]:
        """Decode an event in either framing, written with any known schema version.

        Raises EventDecodeError when the event is at fault (a poison message), and
        SchemaRegistryError when its writer schema cannot be fetched now (try again).
        """
        if data and data[:1] == CONFLUENT_MAGIC:
            writer, start = self._registered_writer(data), _CONFLUENT_HEADER_LEN
        else:
            writer, start = self._writer_of(data), _HEADER_LEN
        assert data is not None
        try:
            if writer.fingerprint == self.schema.fingerprint and self._read_own is not None:
                record, _ = self._read_own(bytes(data), start)
            else:
                record = fastavro.schemaless_reader(
                    io.BytesIO(data[start:]), writer.parsed, self.schema.parsed
                )
        except Exception as exc:  # truncated or garbage bodies raise many types
            raise EventDecodeError(f"{self.schema.name}: body does not decode: {exc}") from exc
        if not isinstance(record, dict):
            raise EventDecodeError(f"{self.schema.name}: not a record")
        return record

    def _body(self, record: dict[str, Any]) -> bytes:
        record = self._name_union_branches(record)
        if self._write_own is not None:
            out = bytearray()
            try:
                self._write_own(record, out)
                return bytes(out)
            except Unfit:
                pass  # fastavro writes it, or says what is wrong with it
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(
                buffer, self.schema.parsed, record, strict_allow_default=True
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise EventEncodeError(f"{self.schema.name}: {exc}") from exc
        return buffer.getvalue()

    def _name_union_branches(self, record: dict[str, Any]) -> dict[str, Any]:
        """Name the branch of each field that is a union of records, when the value's
        keys are exactly one branch's fields. Unnamed, fastavro validates the whole
        value against each branch in turn to choose one: for a similarity result,
        768 floats checked before they are written. Otherwise the value is left to
        fastavro as it is (a missing field with a default, an invalid value)."""
        named = None
        for name, branches in self._union_branches.items():
            value = record.get(name)
            if isinstance(value, dict) and (branch := branches.get(frozenset(value))) is not None:
                named = named if named is not None else dict(record)
                named[name] = (branch, value)
        return record if named is None else named

    def _registered_writer(self, data: bytes) -> EventSchema:
        if self.registry is None:
            raise EventDecodeError("Confluent-framed message but no schema registry is configured")
        if len(data) < _CONFLUENT_HEADER_LEN:
            raise EventDecodeError(f"{self.schema.name}: truncated Confluent-framed message")
        (schema_id,) = _SCHEMA_ID.unpack_from(data, len(CONFLUENT_MAGIC))
        if (known := self._registered.get(schema_id)) is not None:
            return known
        try:
            writer = EventSchema.from_json(json.loads(self.registry.writer_schema(schema_id)))
        except (SchemaError, ValueError) as exc:
            raise EventDecodeError(f"schema id {schema_id} is not a usable Avro schema") from exc
        self._registered[schema_id] = writer
        return writer

    def _writer_of(self, data: bytes | None) -> EventSchema:
        if not data:
            raise EventDecodeError(f"{self.schema.name}: empty message")
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
    """The codec of an event type, able to read every known version of it.

    It writes the Confluent wire format when this process's settings name a
    schema registry (``SCHEMA_REGISTRY_URL``), single-object framing otherwise.
    """
    return AvroCodec(load_schema(event_type), known_writer_schemas(), configured_registry())
