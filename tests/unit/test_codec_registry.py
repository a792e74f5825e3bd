"""The codec with a schema registry: Confluent wire format out, both framings in.

The registry here is confluent-kafka's own in-memory client (``mock://``), so
what the codec writes is read back by a plain confluent-kafka
``AvroDeserializer``. The real registry is exercised by the integration tests.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.error import SchemaRegistryError as ClientError
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.codec import AvroCodec, codec_for, known_writer_schemas, load_schema
from schemas.exceptions import EventDecodeError, EventEncodeError, SchemaRegistryError
from schemas.registry import SchemaRegistry, SchemaRegistrySettings, is_unknown_schema

NOW = int(time.time() * 1000)
STATUS = {
    "task_id": "t1",
    "state": "RUNNING",
    "attempt": 1,
    "worker": "w1",
    "progress": None,
    "error": None,
    "occurred_at": NOW,
}
TOPIC = "unit.tasks.status"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> SchemaRegistryClient:
    """confluent-kafka's in-memory registry client, recording compatibility settings."""
    mock = SchemaRegistryClient.new_client({"url": f"mock://{time.monotonic_ns()}"})
    levels: dict[str, str] = {}
    monkeypatch.setattr(
        mock,
        "set_compatibility",
        lambda subject, level: levels.update({subject: level}),
        raising=False,
    )
    mock.levels = levels  # type: ignore[attr-defined]
    return mock


def _codec(client: SchemaRegistryClient, event_type: str = "TaskStatus") -> AvroCodec:
    return AvroCodec(load_schema(event_type), known_writer_schemas(), SchemaRegistry(client))


def test_a_registry_codec_writes_the_confluent_wire_format(client: Any) -> None:
    data = _codec(client).encode(STATUS, TOPIC)
    assert data[0] == 0
    (schema_id,) = struct.unpack(">I", data[1:5])
    registered = client.get_latest_version(f"{TOPIC}-value")
    assert registered.schema_id == schema_id
    assert client.levels == {f"{TOPIC}-value": "BACKWARD"}


def test_a_plain_confluent_deserializer_reads_it(client: SchemaRegistryClient) -> None:
    data = _codec(client).encode(STATUS, TOPIC)
    decoded = AvroDeserializer(client)(data, SerializationContext(TOPIC, MessageField.VALUE))
    assert decoded is not None
    assert decoded["task_id"] == "t1" and decoded["state"] == "RUNNING"


def test_a_registry_codec_reads_both_framings(client: SchemaRegistryClient) -> None:
    codec = _codec(client)
    for data in (codec.encode(STATUS, TOPIC), codec_for("TaskStatus").encode(STATUS)):
        decoded = codec.decode(data)
        assert decoded["task_id"] == "t1" and decoded["attempt"] == 1


def test_schema_ids_are_registered_once_per_subject(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    register = client.register_schema
    monkeypatch.setattr(
        client,
        "register_schema",
        lambda subject, schema, *a: calls.append(subject) or register(subject, schema),
    )
    codec = _codec(client)
    for _ in range(3):
        codec.encode(STATUS, TOPIC)
    codec.encode(STATUS, "unit.tasks.cancellations")
    assert calls == [f"{TOPIC}-value", "unit.tasks.cancellations-value"]


def test_a_registry_codec_needs_the_topic(client: SchemaRegistryClient) -> None:
    with pytest.raises(EventEncodeError, match="topic"):
        _codec(client).encode(STATUS)


def test_an_unknown_schema_id_is_a_decode_error(client: SchemaRegistryClient) -> None:
    with pytest.raises(EventDecodeError):
        _codec(client).decode(b"\x00\x00\x00\x30\x39\x02")


def test_without_a_registry_confluent_framing_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="no schema registry"):
        codec_for("TaskStatus").decode(b"\x00\x00\x00\x00\x01\x02")


def test_an_unreachable_registry_is_a_registry_error_at_once() -> None:
    registry = SchemaRegistry.connect(SchemaRegistrySettings(url="http://127.0.0.1:9"))
    codec = AvroCodec(load_schema("TaskStatus"), (), registry)
    started = time.monotonic()
    with pytest.raises(SchemaRegistryError):
        codec.encode(STATUS, TOPIC)
    # No retries sleeping on the caller's thread (an event loop in two services).
    assert time.monotonic() - started < 1.0


def test_an_unreachable_registry_while_decoding_is_transient_not_poison() -> None:
    registry = SchemaRegistry.connect(SchemaRegistrySettings(url="http://127.0.0.1:9"))
    codec = AvroCodec(load_schema("TaskStatus"), (), registry)
    with pytest.raises(SchemaRegistryError) as raised:
        codec.decode(b"\x00\x00\x00\x30\x39\x02")
    assert not isinstance(raised.value, EventDecodeError)


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (ClientError(404, 40403, "Schema not found"), True),
        (ClientError(500, 50001, "Error in the backend data store"), False),
        (ClientError(503, -1, "Service Unavailable"), False),
        (ClientError(401, 40101, "Unauthorized"), False),
        (httpx.ConnectError("[Errno 111] Connection refused"), False),
        (httpx.ReadTimeout("timed out"), False),
    ],
)
def test_only_a_not_found_answer_makes_an_event_poison(error: Exception, unknown: bool) -> None:
    assert is_unknown_schema(error) is unknown


def test_cached_ids_need_no_registry(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    writer, reader = _codec(client), _codec(client)
    assert writer.learn_schema_id(TOPIC) is not None
    data = writer.encode(STATUS, TOPIC)
    assert reader.decode(data)["task_id"] == "t1"

    def unreachable(*_: object, **__: object) -> None:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    for call in ("register_schema", "get_schema", "set_compatibility", "lookup_schema"):
        monkeypatch.setattr(client, call, unreachable, raising=False)
    assert writer.encode(STATUS, TOPIC) == data
    assert reader.decode(data)["task_id"] == "t1"
    assert writer.learn_schema_id(TOPIC) == int.from_bytes(data[1:5], "big")


def test_without_a_registry_there_is_no_id_to_learn() -> None:
    assert AvroCodec(load_schema("TaskStatus")).learn_schema_id(TOPIC) is None


def test_settings_pass_basic_auth_to_the_client() -> None:
    settings = SchemaRegistrySettings(url="http://r:8081", basic_auth_user_info="u:p")  # type: ignore[arg-type]
    assert settings.client_config() == {
        "url": "http://r:8081",
        "timeout": 5.0,
        "max.retries": 0,
        "basic.auth.user.info": "u:p",
    }


def test_needs_registry_says_when_a_call_would_ask_the_registry(client: Any) -> None:
    """What the processor asks before it decodes on its event loop."""
    writer, reader = _codec(client), _codec(client)
    assert writer.needs_registry(topic=TOPIC)
    data = writer.encode(STATUS, TOPIC)
    assert not writer.needs_registry(topic=TOPIC)
    assert reader.needs_registry(data)  # the writer's id, not yet fetched here
    reader.decode(data)
    assert not reader.needs_registry(data)
    assert reader.needs_registry(data, topic=TOPIC)  # its own id under the topic, not learned
    assert not reader.needs_registry(codec_for("TaskStatus").encode(STATUS))  # single-object
    assert not AvroCodec(load_schema("TaskStatus")).needs_registry(data, topic=TOPIC)
