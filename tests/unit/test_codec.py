"""The event codec: framing, round trips, schema evolution and bad bytes."""

from __future__ import annotations

import copy
import io
import json
import time

import fastavro
import pytest

from schemas.codec import (
    SCHEMA_DIR,
    AvroCodec,
    EventSchema,
    codec_for,
    known_writer_schemas,
    record_union_branches,
)
from schemas.exceptions import EventDecodeError, EventEncodeError

NOW = int(time.time() * 1000)
EVENTS = {
    "TaskRequest": {
        "task_id": "t1",
        "kind": "similarity",
        "inputs": {"item_a": "TV", "item_b": "Samsung"},
        "submitted_at": NOW,
        "callback_url": None,
        "tenant": None,
    },
    "TaskStatus": {
        "task_id": "t1",
        "state": "FAILED",
        "attempt": 2,
        "worker": "w1",
        "progress": 0.5,
        "error": {"type": "Boom", "message": "it broke"},
        "occurred_at": NOW,
    },
    "TaskResult": {
        "task_id": "t1",
        "kind": "embed",
        "output": {"vectors": [[0.5, -0.25]], "dimensions": 2},
        "model": {"name": "m", "revision": "r", "device": "cpu"},
        "attempt": 1,
        "worker": "w1",
        "duration_ms": 1.5,
        "completed_at": NOW,
    },
    "DeadLetter": {
        "source_topic": "t",
        "source_partition": 0,
        "source_offset": 7,
        "key": b"k",
        "value": b"\x00\x01",
        "error_type": "E",
        "error_message": "m",
        "failed_at": NOW,
    },
}


def _millis(value) -> int:  # type: ignore[no-untyped-def]
    return int(value.timestamp() * 1000)


@pytest.mark.parametrize("event_type", sorted(EVENTS))
def test_round_trip(event_type: str) -> None:
    codec = codec_for(event_type)
    decoded = codec.decode(codec.encode(EVENTS[event_type]))
    for key, value in EVENTS[event_type].items():
        got = decoded[key]
        assert (_millis(got) if key.endswith("_at") else got) == value


def test_single_object_framing_uses_the_spec_fingerprint() -> None:
    # Avro spec: CRC-64-AVRO of the schema "null" is 0x63dd24e7cc258f8a, framed little-endian.
    assert EventSchema.from_json("null").fingerprint == (0x63DD24E7CC258F8A).to_bytes(8, "little")  # type: ignore[arg-type]
    data = codec_for("TaskStatus").encode(EVENTS["TaskStatus"])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == codec_for("TaskStatus").schema.fingerprint


def test_every_field_of_every_schema_is_documented() -> None:
    def fields(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            if node.get("type") == "record":
                assert node.get("doc"), node["name"]
                for field in node["fields"]:
                    assert field.get("doc"), f"{node['name']}.{field['name']}"
                    yield field
                    yield from fields(field["type"])
            elif node.get("type") in ("array", "map"):
                yield from fields(node.get("items") or node.get("values"))
        elif isinstance(node, list):
            for branch in node:
                yield from fields(branch)

    for path in SCHEMA_DIR.glob("*.avsc"):
        raw = json.loads(path.read_text())
        assert raw["namespace"] == "dev.asyncarch.events"
        assert list(fields(raw))


def _older_request_schema() -> EventSchema:
    """The TaskRequest as it would have been before callback_url and tenant existed."""
    raw = json.loads((SCHEMA_DIR / "task_request.avsc").read_text())
    raw["fields"] = [f for f in raw["fields"] if f["name"] not in ("callback_url", "tenant")]
    return EventSchema.from_json(raw)


def test_new_reader_reads_events_of_an_old_writer() -> None:
    old = _older_request_schema()
    event = {k: v for k, v in EVENTS["TaskRequest"].items() if k not in ("callback_url", "tenant")}
    data = AvroCodec(old).encode(event)
    new_reader = AvroCodec(codec_for("TaskRequest").schema, (old,))
    decoded = new_reader.decode(data)
    assert decoded["inputs"] == {"item_a": "TV", "item_b": "Samsung"}
    assert decoded["callback_url"] is None and decoded["tenant"] is None


def test_old_reader_reads_events_of_a_new_writer() -> None:
    event = {**EVENTS["TaskRequest"], "callback_url": "https://example.test/hook", "tenant": "k1"}
    data = codec_for("TaskRequest").encode(event)
    old_reader = AvroCodec(_older_request_schema(), known_writer_schemas())
    decoded = old_reader.decode(data)
    assert decoded["task_id"] == "t1"
    assert "callback_url" not in decoded


def test_old_reader_maps_an_unknown_state_symbol_to_its_default() -> None:
    raw = json.loads((SCHEMA_DIR / "task_status.avsc").read_text())
    newer = copy.deepcopy(raw)
    newer["fields"][1]["type"]["symbols"].append("PAUSED")
    newer_schema = EventSchema.from_json(newer)
    data = AvroCodec(newer_schema).encode({**EVENTS["TaskStatus"], "state": "PAUSED"})
    decoded = AvroCodec(EventSchema.from_json(raw), (newer_schema,)).decode(data)
    assert decoded["state"] == "PENDING"


@pytest.mark.parametrize(
    "data",
    [b"", b"{}", b"\xc3\x01short", b"\xc3\x01" + b"\x00" * 8 + b"x", b"\x00\x00\x00\x00\x01abc"],
)
def test_bad_bytes_raise_a_decode_error(data: bytes) -> None:
    with pytest.raises(EventDecodeError):
        codec_for("TaskRequest").decode(data)


def test_truncated_body_raises_a_decode_error() -> None:
    data = codec_for("TaskRequest").encode(EVENTS["TaskRequest"])
    with pytest.raises(EventDecodeError, match="body does not decode"):
        codec_for("TaskRequest").decode(data[:15])


def test_record_missing_a_required_field_raises_an_encode_error() -> None:
    with pytest.raises(EventEncodeError):
        codec_for("TaskStatus").encode({"task_id": "t1"})


def test_requests_before_and_after_deliver_to_read_each_other() -> None:
    """v2 (schemas/history) had no deliver_to: its events read as None, and a v2 reader
    reads a v3 event without it."""
    v2 = EventSchema.from_file(SCHEMA_DIR / "history" / "task_request.v2.avsc")
    assert v2.fingerprint in {w.fingerprint for w in known_writer_schemas()}
    old_event = AvroCodec(v2).encode(EVENTS["TaskRequest"])
    assert codec_for("TaskRequest").decode(old_event)["deliver_to"] is None
    new_event = codec_for("TaskRequest").encode(
        {**EVENTS["TaskRequest"], "deliver_to": "s3://results/out/"}
    )
    decoded = AvroCodec(v2, known_writer_schemas()).decode(new_event)
    assert decoded["task_id"] == "t1" and "deliver_to" not in decoded


def _union_schema(*branches: dict) -> EventSchema:
    return EventSchema.from_json(
        {
            "type": "record",
            "name": "Holder",
            "fields": [{"name": "value", "type": ["null", *branches]}],
        }
    )


def _record(name: str, *fields: tuple[str, str]) -> dict:
    return {"type": "record", "name": name, "fields": [{"name": n, "type": t} for n, t in fields]}


@pytest.mark.parametrize(
    "output",
    [
        {"similarity": 0.5, "embedding_a": [0.25, -1.0], "embedding_b": [1.0, 0.0]},
        {"vectors": [[0.5, -0.25]], "dimensions": 2},
        {"passages": [{"text": "p", "score": 0.5, "start": 0, "end": 1}]},
    ],
    ids=["similarity", "embed", "document-search"],
)
def test_a_named_union_branch_writes_what_fastavro_chooses_itself(output: dict) -> None:
    """The codec names the branch of a union of records from the value's keys, so
    fastavro does not validate the value against each branch; the bytes are the
    ones fastavro writes when it chooses the branch itself."""
    codec = codec_for("TaskResult")
    record = {**EVENTS["TaskResult"], "output": output}
    named = codec._name_union_branches(record)
    assert isinstance(named["output"], tuple) and named["output"][1] is output
    assert record["output"] is output, "the caller's record was changed"
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, codec.schema.parsed, record)
    assert codec.encode(record).endswith(buffer.getvalue())
    assert codec.decode(codec.encode(record))["output"] == output  # floats exact in 32 bits


def test_a_value_that_names_no_branch_is_left_to_fastavro() -> None:
    """Keys that are not exactly one branch's fields (here a missing field with a
    default) are not named: fastavro chooses, and an invalid value still fails."""
    with_default = _record("A", ("x", "int")) | {}
    with_default["fields"].append({"name": "y", "type": "int", "default": 7})
    codec = AvroCodec(_union_schema(with_default, _record("B", ("z", "string"))))
    assert codec.decode(codec.encode({"value": {"x": 1}}))["value"] == {"x": 1, "y": 7}
    assert codec.decode(codec.encode({"value": {"z": "s"}}))["value"] == {"z": "s"}
    with pytest.raises(EventEncodeError):
        codec.encode({"value": {"z": 3}})
    with pytest.raises(EventEncodeError):
        codec.encode({"value": {"q": 3}})


def test_branches_with_the_same_fields_are_never_named() -> None:
    """Two record branches with one set of field names cannot be told apart by keys."""
    schema = _union_schema(_record("A", ("x", "int")), _record("B", ("x", "string")))
    assert record_union_branches(schema.parsed) == {}
    codec = AvroCodec(schema)
    assert codec.decode(codec.encode({"value": {"x": "s"}}))["value"] == {"x": "s"}
    assert codec.decode(codec.encode({"value": {"x": 2}}))["value"] == {"x": 2}
