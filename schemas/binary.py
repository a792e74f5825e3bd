"""A compiled Avro binary reader and writer for events of this codebase's own schemas.

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

The writer is compiled the same way, for the same reason (a similarity result
took ~90 µs to encode). It writes only values whose encoding it can prove is the
one fastavro writes: exact Python types, ints in range, a union branch named by
the codec or told apart by type alone, a record's missing field only when it has
a default. For anything else it raises ``Unfit`` and the codec hands the record
to fastavro, which writes it or says what is wrong with it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from fastavro.read import LOGICAL_READERS
from fastavro.write import LOGICAL_WRITERS

__all__ = ["Reader", "Unfit", "Writer", "compile_reader", "compile_writer"]

# A reader takes the body and a position, and answers the value and the next position.
Reader = Callable[[bytes, int], tuple[Any, int]]
_LOGICAL = ("timestamp-millis", "timestamp-micros", "local-timestamp-millis")
_PACKED = {"float": ("f", 4), "double": ("d", 8)}
_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")


class _Unsupported(Exception):
    """A schema node this module does not compile."""


class Unfit(Exception):
    """A value the compiled writer leaves to fastavro."""


def compile_reader(parsed: Any) -> Reader | None:
    """A reader of ``parsed`` (a fastavro-parsed schema), or None when unsupported."""
    return _compiled(parsed, _compile)


def _compiled(parsed: Any, compile_node: Callable[..., Any]) -> Any:
    """``compile_node`` run on the whole of ``parsed``, or None when a node is unsupported."""
    named = parsed.get("__named_schemas", {}) if isinstance(parsed, dict) else {}
    try:
        return compile_node(parsed, named, frozenset())
    except _Unsupported:
        return None


def _definition(name: str, named: dict[str, Any], within: frozenset[str]) -> Any:
    """The definition of a named type referred to by name (none recursive here)."""
    if name in within or name not in named:
        raise _Unsupported(f"recursive or unknown type {name}")
    return named[name]


def _compile(schema: Any, named: dict[str, Any], within: frozenset[str]) -> Reader:
    if isinstance(schema, list):
        return _union([_compile(branch, named, within) for branch in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return _PRIMITIVES[schema]
        return _compile(_definition(schema, named, within), named, within)
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


def _logical_key(schema: dict[str, Any]) -> str:
    """fastavro's key for the converters of a logical type compiled here."""
    if schema["logicalType"] not in _LOGICAL or schema["type"] != "long":
        raise _Unsupported(f"logical type {schema['logicalType']}")
    return f"long-{schema['logicalType']}"


def _logical(schema: dict[str, Any]) -> Reader:
    convert = LOGICAL_READERS[_logical_key(schema)]

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


# A writer appends a value's encoding to the buffer, or raises Unfit.
Writer = Callable[[Any, bytearray], None]
_INT_RANGE = {"int": (-(2**31), 2**31), "long": (-(2**63), 2**63)}


def compile_writer(parsed: Any) -> Writer | None:
    """A writer of ``parsed`` (a fastavro-parsed schema), or None when unsupported."""
    return _compiled(parsed, _compile_writer)


def _compile_writer(schema: Any, named: dict[str, Any], within: frozenset[str]) -> Writer:
    if isinstance(schema, list):
        return _write_union(schema, [_compile_writer(b, named, within) for b in schema])
    if isinstance(schema, str):
        if schema in _PRIMITIVE_WRITERS:
            return _PRIMITIVE_WRITERS[schema]
        return _compile_writer(_definition(schema, named, within), named, within)
    kind = schema["type"]
    if "logicalType" in schema:
        return _write_logical(schema)
    if kind == "record":
        inside = within | {schema["name"]}
        return _write_record(
            [(f, _compile_writer(f["type"], named, inside)) for f in schema["fields"]]
        )
    if kind == "array":
        return _write_array(schema["items"], _compile_writer(schema["items"], named, within))
    if kind == "enum":
        return _write_enum(tuple(schema["symbols"]))
    if kind in ("map", "fixed"):
        raise _Unsupported(f"writing a {kind}")  # none in this codebase's schemas
    return _compile_writer(kind, named, within)


def _put_long(value: int, out: bytearray) -> None:
    n = (value << 1) ^ (value >> 63)
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _integer(kind: str) -> Writer:
    low, high = _INT_RANGE[kind]

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not int or not low <= value < high:
            raise Unfit(kind)
        _put_long(value, out)

    return write


def _put_null(value: Any, out: bytearray) -> None:
    if value is not None:
        raise Unfit("null")


def _put_boolean(value: Any, out: bytearray) -> None:
    if type(value) is not bool:
        raise Unfit("boolean")
    out.append(1 if value else 0)


def _packer(kind: str) -> Writer:
    pack = (_FLOAT if kind == "float" else _DOUBLE).pack

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not float:
            raise Unfit(kind)
        try:
            out += pack(value)
        except OverflowError as exc:  # fastavro writes inf where struct refuses
            raise Unfit(kind) from exc

    return write


def _put_bytes(value: Any, out: bytearray) -> None:
    if type(value) is not bytes:
        raise Unfit("bytes")
    _put_long(len(value), out)
    out += value


def _put_string(value: Any, out: bytearray) -> None:
    if type(value) is not str:
        raise Unfit("string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Unfit("string") from exc
    _put_long(len(raw), out)
    out += raw


_PRIMITIVE_WRITERS: dict[str, Writer] = {
    "null": _put_null,
    "boolean": _put_boolean,
    "int": _integer("int"),
    "long": _integer("long"),
    "float": _packer("float"),
    "double": _packer("double"),
    "bytes": _put_bytes,
    "string": _put_string,
}
# What fastavro's union validation accepts for each primitive branch, exactly.
_BRANCH_TYPES = {
    "string": str,
    "boolean": bool,
    "bytes": bytes,
    "float": float,
    "double": float,
    "int": int,
    "long": int,
}


def _write_logical(schema: dict[str, Any]) -> Writer:
    convert = LOGICAL_WRITERS[_logical_key(schema)]
    put = _integer("long")

    def write(value: Any, out: bytearray) -> None:
        put(value if type(value) is int else convert(value, schema), out)

    return write


def _write_record(fields: list[tuple[dict[str, Any], Writer]]) -> Writer:
    names = frozenset(f["name"] for f, _ in fields)

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not dict or not names.issuperset(value):
            raise Unfit("record")
        for field, put in fields:
            name = field["name"]
            if name in value:
                put(value[name], out)
            elif "default" in field:
                put(field["default"], out)
            else:
                raise Unfit(f"missing {name}")

    return write


def _write_union(branches: list[Any], writers: list[Writer]) -> Writer:
    """A branch named by the codec (a ``(name, value)`` tuple), null for None, or the
    one branch of a ``["null", X]`` union whose Python type X takes as fastavro does."""
    names = {b["name"]: i for i, b in enumerate(branches) if isinstance(b, dict) and "name" in b}
    null = branches.index("null") if "null" in branches else None
    other = [i for i, b in enumerate(branches) if b != "null"]
    only = other[0] if len(branches) == 2 and null is not None else None
    kind = _branch_kind(branches[only]) if only is not None else None

    def write(value: Any, out: bytearray) -> None:
        if type(value) is tuple and len(value) == 2 and value[0] in names:
            index, value = names[value[0]], value[1]
        elif value is None and null is not None:
            index = null
        elif only is not None and kind is not None and type(value) is _BRANCH_TYPES[kind]:
            index = only
        else:
            raise Unfit("union")
        _put_long(index, out)
        writers[index](value, out)

    return write


def _branch_kind(branch: Any) -> str | None:
    """The primitive a union branch holds, when a value's type alone tells it apart."""
    if isinstance(branch, str) and branch in _BRANCH_TYPES:
        return branch
    if isinstance(branch, dict) and branch.get("logicalType") == "timestamp-millis":
        return "long"  # an int; a datetime is left to fastavro
    return None


def _write_array(items: Any, item: Writer) -> Writer:
    packed = _PACKED.get(items) if isinstance(items, str) else None

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not list:
            raise Unfit("array")
        if value:
            _put_long(len(value), out)
            if packed is not None and set(map(type, value)) == {float}:
                try:
                    out += struct.pack(f"<{len(value)}{packed[0]}", *value)
                except OverflowError as exc:
                    raise Unfit("array") from exc
            else:
                for element in value:
                    item(element, out)
        out.append(0)

    return write


def _write_enum(symbols: tuple[str, ...]) -> Writer:
    index = {symbol: i for i, symbol in enumerate(symbols)}

    def write(value: Any, out: bytearray) -> None:
        if type(value) is not str or value not in index:
            raise Unfit("enum")
        _put_long(index[value], out)

    return write
