"""The pipeline with a schema registry: Confluent wire format on every topic.

A pipeline of its own runs with ``SCHEMA_REGISTRY_URL`` set to the session's
registry (a local Apicurio Registry). Every event it writes on every pipeline
topic starts with byte 0 and a plain confluent-kafka ``AvroDeserializer``
reads it; single-object events written without a registry are still read;
each ``.avsc`` is compatible with the version registered under its subject.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from asyncarch.config import KafkaSettings
from schemas.codec import (
    CONFLUENT_CONTENT_TYPE,
    SCHEMA_DIR,
    AvroCodec,
    EventSchema,
    codec_for,
    load_schema,
)
from schemas.headers import header_value
from schemas.registry import SchemaRegistry, SchemaRegistrySettings, value_subject
from tests.helpers import eventually, read_all
from tests.stack import Pipeline, launch_pipeline, wait_for_state

pytestmark = pytest.mark.integration

# The event type each pipeline topic carries.
TOPIC_EVENTS = {
    "requests": "TaskRequest",
    "status": "TaskStatus",
    "results": "TaskResult",
    "dead_letters": "DeadLetter",
    "cancellations": "TaskStatus",
    "task_state": "TaskStateChanged",
}
CORRUPT_KEY = b"corrupt-registry"


@pytest.fixture(scope="module")
def registry_pipeline(
    kafka: KafkaSettings, schema_registry_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """API, worker and processor writing through the registry, on fresh topics."""
    result = launch_pipeline(
        kafka, tmp_path_factory.mktemp("registry-pipeline"), SCHEMA_REGISTRY_URL=schema_registry_url
    )
    yield result
    result.services.stop()


@pytest.fixture(scope="module")
def client(schema_registry_url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": schema_registry_url})


@pytest.fixture(scope="module")
def traffic(registry_pipeline: Pipeline) -> dict[str, list]:
    """Events on every pipeline topic: a success, a cancellation and a dead letter."""
    producer = Producer(registry_pipeline.kafka.producer())
    producer.produce(registry_pipeline.topics.requests, key=CORRUPT_KEY, value=b"\x00garbage")
    producer.flush(10)
    with registry_pipeline.client() as http:
        done = http.post(
            "/v1/tasks", json={"kind": "similarity", "inputs": {"item_a": "a", "item_b": "b"}}
        ).json()["task_id"]
        wait_for_state(http, done, {"SUCCESS"})
        _cancel_one(http)
    topics = registry_pipeline.topics
    minimum = {"requests": 3, "status": 1, "results": 1, "dead_letters": 1, "cancellations": 1}
    minimum["task_state"] = 2
    return {
        name: _read_at_least(registry_pipeline.kafka, getattr(topics, name), count)
        for name, count in minimum.items()
    }


def _cancel_one(http: httpx.Client) -> None:
    """Submit and cancel until a cancel is accepted (202) before the task finished (409)."""
    for _ in range(10):
        task_id = http.post(
            "/v1/tasks", json={"kind": "embed", "inputs": {"texts": ["to cancel"]}}
        ).json()["task_id"]
        answer = http.post(f"/v1/tasks/{task_id}/cancel")
        wait_for_state(http, task_id, {"SUCCESS", "CANCELLED"})
        if answer.status_code == 202:
            return
    raise AssertionError("every task finished before its cancel arrived")


def _read_at_least(kafka: KafkaSettings, topic: str, count: int) -> list:
    def enough() -> list | None:
        messages = read_all(kafka, topic, count, timeout_s=5)
        return messages if len(messages) >= count else None

    return eventually(enough, 60, f"{count} events on {topic}")


def test_every_event_on_every_pipeline_topic_starts_with_byte_0(traffic: dict[str, list]) -> None:
    for name, messages in traffic.items():
        ours = [m for m in messages if _ours(name, m) and m.value() is not None]
        assert ours, name
        for message in ours:
            assert message.value()[0] == 0, (name, message.value()[:10])


def test_a_plain_avro_deserializer_reads_every_event(
    traffic: dict[str, list], client: SchemaRegistryClient
) -> None:
    deserialize = AvroDeserializer(client)
    for name, messages in traffic.items():
        schema_name = f"dev.asyncarch.events.{TOPIC_EVENTS[name]}"
        for message in (m for m in messages if _ours(name, m) and m.value()):
            record = deserialize(message.value(), SerializationContext(name, MessageField.VALUE))
            assert isinstance(record, dict), name
            assert header_value(message.headers(), "schema-name") == schema_name
            assert header_value(message.headers(), "content-type") == CONFLUENT_CONTENT_TYPE
            if name == "dead_letters":
                assert record["key"] == CORRUPT_KEY and record["value"] == b"\x00garbage"
            else:
                assert record["task_id"] == message.key().decode()


def test_each_topic_subject_is_registered_backward(
    traffic: dict[str, list], client: SchemaRegistryClient, registry_pipeline: Pipeline
) -> None:
    for name, messages in traffic.items():
        subject = value_subject(getattr(registry_pipeline.topics, name))
        assert client.get_compatibility(subject) == "BACKWARD", subject
        latest = client.get_latest_version(subject)
        framed = next(m.value() for m in messages if _ours(name, m) and m.value())
        assert struct.unpack(">I", framed[1:5])[0] == latest.schema_id, subject


def test_each_avsc_is_compatible_with_its_registered_version(
    traffic: dict[str, list], schema_registry_url: str, registry_pipeline: Pipeline
) -> None:
    """The check `make test` runs: the compatibility endpoint of the registry, per subject."""
    registry = SchemaRegistry.connect(SchemaRegistrySettings(url=schema_registry_url))
    for name, event_type in TOPIC_EVENTS.items():
        subject = value_subject(getattr(registry_pipeline.topics, name))
        assert registry.is_compatible(subject, load_schema(event_type).text), subject
    # The check has teeth: a required field without a default breaks BACKWARD.
    breaking = json.loads(load_schema("TaskStatus").text)
    breaking["fields"].append({"name": "shard", "type": "int", "doc": "no default"})
    subject = value_subject(registry_pipeline.topics.status)
    assert not registry.is_compatible(subject, json.dumps(breaking))


def test_the_current_request_schema_registers_after_its_history(
    schema_registry_url: str,
) -> None:
    """Each historical version, then the current one, under one BACKWARD subject."""
    client = SchemaRegistryClient({"url": schema_registry_url})
    subject = value_subject(f"history-{id(client)}.tasks.requests")
    client.set_compatibility(subject, "BACKWARD")
    for path in sorted((SCHEMA_DIR / "history").glob("task_request.*.avsc")):
        client.register_schema(subject, Schema(_text(path), "AVRO"))
    assert client.test_compatibility(subject, Schema(load_schema("TaskRequest").text, "AVRO"))
    client.register_schema(subject, Schema(load_schema("TaskRequest").text, "AVRO"))


def test_single_object_events_are_still_read(
    registry_pipeline: Pipeline, schema_registry_url: str
) -> None:
    """A request written without a registry is read by the worker and the processor."""
    plain = codec_for("TaskRequest")
    assert plain.registry is None
    task_id = uuid.uuid4().hex
    event = {
        "task_id": task_id,
        "kind": "similarity",
        "inputs": {"item_a": "old", "item_b": "framing"},
        "submitted_at": int(time.time() * 1000),
        "callback_url": None,
        "tenant": None,
    }
    topics = registry_pipeline.topics
    producer = Producer(registry_pipeline.kafka.producer())
    producer.produce(topics.requests, key=task_id.encode(), value=plain.encode(event))
    producer.flush(10)
    registry = SchemaRegistry.connect(SchemaRegistrySettings(url=schema_registry_url))
    for topic, event_type in (
        (topics.results, "TaskResult"),
        (topics.task_state, "TaskStateChanged"),
    ):
        reader = AvroCodec(load_schema(event_type), (), registry)

        def mine(topic: str = topic) -> list:
            found = read_all(registry_pipeline.kafka, topic, 1000, timeout_s=3)
            return [m for m in found if m.key() == task_id.encode() and m.value()]

        events = eventually(mine, 60, f"events of {task_id} on {topic}")
        assert all(m.value()[0] == 0 for m in events), topic
        assert reader.decode(events[-1].value())["task_id"] == task_id


def _ours(topic_name: str, message: Message) -> bool:
    """Every event but the corrupt request this module wrote itself (its dead letter is ours)."""
    return topic_name != "requests" or message.key() != CORRUPT_KEY


def _text(path: Path) -> str:
    return EventSchema.from_file(path).text
