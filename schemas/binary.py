"""A compiled Avro binary reader for an event read with the schema it was written with.

fastavro's reader dispatches on the schema for every value, which costs ~0.2 µs
an item of an array: a similarity result's 768 floats took ~150 µs to decode,
the largest share of the processor's decoding. When the writer schema is the
reader's own (every event this codebase wrote with its current schemas), no
resolution is needed, so the reader is compiled once into closures, one per
schema node, and an array of floats or doubles is unpacked block by block with
``struct``. It returns exactly what fastavro returns (logical types through
fastavro's own converters) and raises on a truncated or malformed body.

``compile_reader`` answers None for what it does not compile (a logical type
other than the timestamps, a recursive schema); the codec then leaves that
schema to fastavro.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from fastavro._read import LOGICAL_READERS

__all__ = ["Reader", "compile_reader"]

# A reader takes the body and a position, and answers the value and the next position.
Reader = Callable[[bytes, int], tuple[Any, int]]
_LOGICAL = ("timestamp-millis", "timestamp-micros", "local-timestamp-millis")
_PACKED = {"float": ("f", 4), "double": ("d", 8)}
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class _Unsupported(Exception):
    """A schema node this module does not compile."""


def compile_reader(parsed: Any) -> Reader | None:
    """A reader of ``parsed`` (a fastavro-parsed schema), or None when unsupported."""
    named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    try:
        return _compile(parsed, named, frozenset())
    except _Unsupported:
        return None


def _compile(schema: Any, named: dict[str, Any], within: frozenset[str]) -> Reader:
    if isinstance(schema, list):
        return _union([_compile(branch, named, within) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        if schema in within or schema not in named:
            raise _Unsupported(f"recursive or unknown type {schema}")
        return _compile(named[schema], named, within)
    kind = schema["type"]
    if "logicalType" in schema:
        return _logical(schema)
    if kind == "record":
        inside = within | {schema["name"]}
        return _record([(f["name"], _compile(f["type"], named, inside)) for f in schema["fields"]])
    if kind == "array":
        return _array(schema["items"], _compile(schema["items"], named, within))
    if kind == "map":
        return _map(_compile(schema["values"], named, within))
    if kind == "enum":
        return _enum(tuple(schema["symbols"]))
    if kind == "fixed":
        return _fixed(int(schema["size"]))
    return _compile(kind, named, within)


def _long(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    pos += 1
    value, shift = byte & 0x7F, 7
    while byte & 0x80:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def _bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _long(data, pos)
    end = pos + size
    if size < 0 or end > len(data):
        raise ValueError(f"a length of {size} at {pos} runs past the body")
    return data[pos:end], end


def _string(data: bytes, pos: int) -> tuple[str, int]:
    raw, pos = _bytes(data, pos)
    return raw.decode("utf-8"), pos


def _null(data: bytes, pos: int) -> tuple[None, int]:
    return None, pos


def _boolean(data: bytes, pos: int) -> tuple[bool, int]:
    return data[pos] != 0, pos + 1


def _double(data: bytes, pos: int) -> tuple[float, int]:
    return _DOUBLE.unpack_from(data, pos)[0], pos + 8


def _float(data: bytes, pos: int) -> tuple[float, int]:
    return _FLOAT.unpack_from(data, pos)[0], pos + 4


_PRIMITIVES: dict[str, Reader] = {
    "null": _null,
    "boolean": _boolean,
    "int": _long,
    "long": _long,
    "float": _float,
    "double": _double,
    "bytes": _bytes,
    "string": _string,
}


def _logical(schema: dict[str, Any]) -> Reader:
    logical = schema["logicalType"]
    if logical not in _LOGICAL or schema["type"] != "long":
        raise _Unsupported(f"logical type {logical}")
    convert = LOGICAL_READERS[f"long-{logical}"]

    def read(data: bytes, pos: int) -> tuple[Any, int]:
        value, pos = _long(data, pos)
        return convert(value, schema, schema), pos

    return read


def _record(fields: list[tuple[str, Reader]]) -> Reader:
    def read(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        record = {}
        for name, field in fields:
            record[name], pos = field(data, pos)
        return record, pos

    return read


def _union(branches: list[Reader]) -> Reader:
    def read(data: bytes, pos: int) -> tuple[Any, int]:
        index, pos = _long(data, pos)
        if not 0 <= index < len(branches):
            raise ValueError(f"union branch {index} of {len(branches)}")
        return branches[index](data, pos)

    return read


def _blocks(data: bytes, pos: int) -> tuple[int, int]:
    """The count of the next block of an array or a map (0 at the end), past its size."""
    count, pos = _long(data, pos)
    if count < 0:
        count = -count
        _, pos = _long(data, pos)  # the block's size in bytes, for skipping it
    return count, pos


def _array(items: Any, item: Reader) -> Reader:
    packed = _PACKED.get(items) if isinstance(items, str) else None

    def read(data: bytes, pos: int) -> tuple[list[Any], int]:
        values: list[Any] = []
        count, pos = _blocks(data, pos)
        while count:
            if packed is not None:
                values.extend(struct.unpack_from(f"<{count}{packed[0]}", data, pos))
                pos += count * packed[1]
            else:
                for _ in range(count):
                    value, pos = item(data, pos)
                    values.append(value)
            count, pos = _blocks(data, pos)
        return values, pos

    return read


def _map(value: Reader) -> Reader:
    def read(data: bytes, pos: int) -> tuple[dict[str, Any], int]:
        values: dict[str, Any] = {}
        count, pos = _blocks(data, pos)
        while count:
            for _ in range(count):
                key, pos = _string(data, pos)
                values[key], pos = value(data, pos)
            count, pos = _blocks(data, pos)
        return values, pos

    return read


def _enum(symbols: tuple[str, ...]) -> Reader:
    def read(data: bytes, pos: int) -> tuple[str, int]:
        index, pos = _long(data, pos)
        if not 0 <= index < len(symbols):
            raise ValueError(f"enum index {index} of {len(symbols)}")
        return symbols[index], pos

    return read


def _fixed(size: int) -> Reader:
    def read(data: bytes, pos: int) -> tuple[bytes, int]:
        if pos + size > len(data):
            raise ValueError(f"a fixed of {size} bytes at {pos} runs past the body")
        return data[pos : pos + size], pos + size

    return read
