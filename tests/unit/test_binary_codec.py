"""The compiled reader and writer (schemas/binary.py) against fastavro: the reader
answers what fastavro answers for every schema this codebase writes, and fails where
fastavro fails; the writer writes fastavro's bytes, or leaves the value to fastavro."""

from __future__ import annotations

import datetime
import io
import random
import string
import struct
from typing import Any

import fastavro
import pytest
from fastavro.schema import parse_schema

from schemas.binary import Unfit, compile_reader, compile_writer
from schemas.codec import SCHEMA_FILES, AvroCodec, codec_for, known_writer_schemas, load_schema
from schemas.exceptions import EventDecodeError, EventEncodeError


def _value(schema: Any, named: dict[str, Any], rnd: random.Random) -> Any:
    """A random value of ``schema`` (fastavro-parsed), of every shape the schema allows."""
    if isinstance(schema, list):
        return _value(rnd.choice(schema), named, rnd)
    if isinstance(schema, str):
        return (
            _PRIMITIVE[schema](rnd) if schema in _PRIMITIVE else _value(named[schema], named, rnd)
        )
    kind = schema["type"]
    if schema.get("logicalType") == "timestamp-millis":
        return rnd.randrange(0, 4_000_000_000_000)
    if kind == "record":
        return {f["name"]: _value(f["type"], named, rnd) for f in schema["fields"]}
    if kind == "array":
        return [_value(schema["items"], named, rnd) for _ in range(rnd.choice([0, 1, 3, 384]))]
    if kind == "map":
        return {_text(rnd): _value(schema["values"], named, rnd) for _ in range(rnd.randrange(4))}
    if kind == "enum":
        return rnd.choice(schema["symbols"])
    return _value(kind, named, rnd)


def _text(rnd: random.Random) -> str:
    return "".join(rnd.choice(string.printable + "éß→😀") for _ in range(rnd.randrange(40)))


_PRIMITIVE = {
    "null": lambda rnd: None,
    "boolean": lambda rnd: rnd.random() < 0.5,
    "int": lambda rnd: rnd.randrange(-(2**31), 2**31),
    "long": lambda rnd: rnd.choice(
        [0, -1, 63, -64, 2**62, -(2**63), rnd.randrange(-(2**40), 2**40)]
    ),
    "float": lambda rnd: rnd.uniform(-1, 1),
    "double": lambda rnd: rnd.uniform(-1e300, 1e300),
    "bytes": lambda rnd: rnd.randbytes(rnd.randrange(20)),
    "string": _text,
}


def _bodies(parsed: Any, count: int, seed: int) -> list[bytes]:
    rnd = random.Random(seed)
    named = parsed.get("__named_schemas", {})
    bodies = []
    for _ in range(count):
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, parsed, _value(parsed, named, rnd))
        bodies.append(buffer.getvalue())
    return bodies


def _result(**changes: Any) -> dict[str, Any]:
    """A similarity result record: two short embeddings, unless changed."""
    record = {
        "task_id": "t1",
        "kind": "similarity",
        "output": {"similarity": 0.5, "embedding_a": [0.5], "embedding_b": [0.25]},
        "model": {"name": "m", "revision": "r", "device": "cpu"},
        "attempt": 1,
        "worker": "w",
        "duration_ms": 1.5,
        "completed_at": 1_700_000_000_123,
    }
    return {**record, **changes}


# A 384-float embedding, and floats at a float32's edges (inf: fastavro writes it too).
EMBEDDINGS = {
    "similarity": 0.25,
    "embedding_a": [random.Random(1).uniform(-1, 1) for _ in range(384)],
    "embedding_b": [1e-45, -0.0, float("inf"), 3.4e38],
}


@pytest.mark.parametrize("event_type", sorted(SCHEMA_FILES))
def test_every_event_type_reads_as_fastavro_reads_it(event_type: str) -> None:
    parsed = load_schema(event_type).parsed
    read = compile_reader(parsed)
    assert read is not None
    for body in _bodies(parsed, 300, seed=len(event_type)):
        expected = fastavro.schemaless_reader(io.BytesIO(body), parsed, parsed)
        value, end = read(body, 0)
        assert value == expected
        assert end == len(body)


def test_a_similarity_result_reads_its_floats_as_fastavro_does() -> None:
    codec = codec_for("TaskResult")
    record = _result(output=EMBEDDINGS)
    data = codec.encode(record)
    expected = fastavro.schemaless_reader(io.BytesIO(data[10:]), codec.schema.parsed)
    assert codec.decode(data) == expected
    assert codec.decode(data)["completed_at"] == expected["completed_at"]  # a UTC datetime


def test_arrays_in_several_blocks_and_with_block_sizes_read_whole() -> None:
    parsed = parse_schema({"type": "array", "items": "float"})
    body = (
        bytes([3 << 1])
        + struct.pack("<3f", 1, 2, 3)  # a block of 3
        + bytes([(1 << 1) - 1, 8 << 1])
        + struct.pack("<f", 4)  # -1: a block of 1, then its size
        + b"\x00"
    )
    read = compile_reader(parsed)
    assert read is not None
    assert read(body, 0) == (fastavro.schemaless_reader(io.BytesIO(body), parsed), len(body))
    assert read(body, 0)[0] == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("event_type", sorted(SCHEMA_FILES))
def test_every_truncated_body_fails_to_decode(event_type: str) -> None:
    codec = codec_for(event_type)
    parsed = codec.schema.parsed
    for body in _bodies(parsed, 5, seed=3):
        data = codec.encode(fastavro.schemaless_reader(io.BytesIO(body), parsed))
        for cut in range(10, len(data), max(1, len(data) // 60)):
            with pytest.raises(EventDecodeError):
                codec.decode(data[:cut])


def test_a_bad_union_branch_or_enum_symbol_fails_to_decode() -> None:
    codec = codec_for("TaskStatus")
    header = codec.encode({"task_id": "t", "state": "RUNNING", "attempt": 1, "occurred_at": 0})[:10]
    with pytest.raises(EventDecodeError):
        codec.decode(header + b"\x02t" + bytes([99 << 1]))  # enum index 99
    string_body = b"\x02t"
    with pytest.raises(EventDecodeError):
        codec.decode(header + string_body + b"\x80\x80\x80\x80\x80")  # an unterminated varint


def test_what_it_does_not_compile_is_left_to_fastavro() -> None:
    decimal = parse_schema({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2})
    recursive = parse_schema(
        {
            "type": "record",
            "name": "Node",
            "fields": [{"name": "next", "type": ["null", "Node"]}],
        }
    )
    assert compile_reader(decimal) is None
    assert compile_reader(recursive) is None


def test_an_old_writer_version_is_still_resolved_by_fastavro() -> None:
    old = next(
        s
        for s in known_writer_schemas()
        if s.name.endswith("TaskRequest") and s != load_schema("TaskRequest")
    )
    codec = codec_for("TaskRequest")
    record = _value(old.parsed, old.parsed.get("__named_schemas", {}), random.Random(5))
    data = AvroCodec(old).encode(record)
    expected = fastavro.schemaless_reader(io.BytesIO(data[10:]), old.parsed, codec.schema.parsed)
    assert codec.decode(data) == expected


def _fastavro_bytes(parsed: Any, record: Any) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record, strict_allow_default=True)
    return buffer.getvalue()


@pytest.mark.parametrize("event_type", sorted(SCHEMA_FILES))
def test_every_event_type_writes_fastavros_bytes(event_type: str) -> None:
    codec = codec_for(event_type)
    parsed = codec.schema.parsed
    write = compile_writer(parsed)
    assert write is not None
    rnd = random.Random(len(event_type))
    written = 0
    for _ in range(300):
        record = _value(parsed, parsed.get("__named_schemas", {}), rnd)
        named = codec._name_union_branches(record)
        out = bytearray()
        try:
            write(named, out)
        except Unfit:
            continue
        written += 1
        assert bytes(out) == _fastavro_bytes(parsed, record)
    assert written > 200  # the compiled writer takes the usual records itself


def test_a_similarity_result_is_written_by_the_compiled_writer() -> None:
    codec = codec_for("TaskResult")
    record = _result(
        output=EMBEDDINGS,
        completed_at=datetime.datetime(2024, 1, 1, 0, 0, 0, 123000, tzinfo=datetime.UTC),
    )
    del record["attempt"], record["worker"]  # left to their defaults
    out = bytearray()
    write = compile_writer(codec.schema.parsed)
    assert write is not None
    write(codec._name_union_branches(record), out)
    assert bytes(out) == _fastavro_bytes(codec.schema.parsed, record)
    assert codec.encode(record)[10:] == bytes(out)


@pytest.mark.parametrize(
    "change",
    [
        {"duration_ms": 2},  # an int for a double: fastavro converts it
        {"attempt": 2**40},  # out of an int's range: fastavro writes it anyway
        {"output": {"similarity": 0.5, "embedding_a": [1, 0.5], "embedding_b": []}},
        {"output": {"similarity": 0.5, "embedding_a": [1e39], "embedding_b": []}},
    ],
)
def test_values_it_cannot_vouch_for_are_written_by_fastavro(change: dict[str, Any]) -> None:
    codec = codec_for("TaskResult")
    record = _result(**change)
    write = compile_writer(codec.schema.parsed)
    assert write is not None
    with pytest.raises(Unfit):
        write(codec._name_union_branches(record), bytearray())
    assert codec.encode(record)[10:] == _fastavro_bytes(codec.schema.parsed, record)


@pytest.mark.parametrize(
    "change",
    [
        {"task_id": None},
        {"extra": 1},
        {"attempt": "one"},
        {"model": {"name": "m"}},
    ],
)
def test_an_invalid_record_still_raises_an_encode_error(change: dict[str, Any]) -> None:
    codec = codec_for("TaskResult")
    record = _result(**change)
    with pytest.raises(EventEncodeError):
        codec.encode(record)
