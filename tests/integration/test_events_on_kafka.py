"""What the pipeline writes to Kafka is readable by any client with the .avsc files."""

from __future__ import annotations

import io
import json

import fastavro
import pytest
from confluent_kafka import Producer

from schemas.codec import SCHEMA_DIR, codec_for
from schemas.headers import header_value
from tests.helpers import read_all
from tests.stack import Pipeline, wait_for_state

pytestmark = pytest.mark.integration


def test_plain_consumer_decodes_results_with_the_avsc_file_alone(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks",
            json={"kind": "similarity", "inputs": {"item_a": "TV", "item_b": "Samsung"}},
        ).json()["task_id"]
        wait_for_state(client, task_id, {"SUCCESS"})
    schema = fastavro.parse_schema(json.loads((SCHEMA_DIR / "task_result.avsc").read_text()))
    messages = [
        m
        for m in read_all(pipeline.kafka, pipeline.topics.results, 1)
        if m.key() == task_id.encode()
    ]
    assert len(messages) == 1
    value = messages[0].value()
    assert value[:2] == b"\xc3\x01"  # Avro single-object encoding
    result = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    assert result["task_id"] == task_id
    assert -1.0 <= result["output"]["similarity"] <= 1.0
    headers = messages[0].headers()
    assert header_value(headers, "event-type") == "TaskResult"
    assert header_value(headers, "schema-name") == "dev.asyncarch.events.TaskResult"
    assert header_value(headers, "task-id") == task_id
    assert header_value(headers, "traceparent").startswith("00-")


def test_corrupt_request_goes_to_dead_letters_and_the_worker_goes_on(pipeline: Pipeline) -> None:
    producer = Producer(pipeline.kafka.producer())
    garbage = b"\xc3\x01 definitely not avro"
    producer.produce(pipeline.topics.requests, key=b"corrupt-1", value=garbage)
    producer.produce(pipeline.topics.requests, key=b"corrupt-2", value=b'{"json": true}')
    producer.flush(10)
    with pipeline.client() as client:
        task_id = client.post(
            "/v1/tasks",
            json={"kind": "similarity", "inputs": {"item_a": "after", "item_b": "corrupt"}},
        ).json()["task_id"]
        assert wait_for_state(client, task_id, {"SUCCESS", "FAILED"})["status"] == "SUCCESS"
    dead = read_all(pipeline.kafka, pipeline.topics.dead_letters, 2)
    by_key = {m.key(): m for m in dead}
    assert set(by_key) == {b"corrupt-1", b"corrupt-2"}
    letter = codec_for("DeadLetter").decode(by_key[b"corrupt-1"].value())
    assert letter["value"] == garbage
    assert letter["source_topic"] == pipeline.topics.requests
    assert letter["error_type"] == "EventDecodeError"
    assert header_value(by_key[b"corrupt-2"].headers(), "error-type") == "EventDecodeError"
    assert "not an Avro single-object" in header_value(
        by_key[b"corrupt-2"].headers(), "error-message"
    )
