"""asyncapi.yaml describes every topic, key, header and payload the code has.

These tests fail when a schema, topic or header changes and the document does not.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas.codec import SCHEMA_DIR, SCHEMA_FILES, load_schema
from schemas.headers import CONTENT_TYPE, event_headers
from schemas.topics import TopicSettings

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "asyncapi.yaml"
AVRO_FORMAT = "application/vnd.apache.avro;version=1.9.0"
SERVICES = {"producer_api", "inference_consumer", "stream_processors"}
# Topics nobody inside asyncarch reads: operators and downstream subscribers do.
READ_OUTSIDE = {"dead_letters", "task_state"}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The parsed document."""
    data = yaml.safe_load(DOCUMENT.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def topics() -> TopicSettings:
    """Topic settings at their defaults, whatever the environment says."""
    return TopicSettings.model_construct()


def topic_properties() -> list[str]:
    """TopicSettings' topic-name properties (requests, status, ...): those that name one
    topic (a ``str``), not groups of them such as ``transactional``."""
    return [
        name
        for name, value in vars(TopicSettings).items()
        if isinstance(value, property)
        and not name.startswith("_")
        and value.fget.__annotations__.get("return") in ("str", str)
    ]


def resolve(doc: dict[str, Any], ref: str) -> Any:
    """The object a local $ref points at."""
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    """Every $ref in a subtree."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def channel_messages(doc: dict[str, Any], channel: str) -> dict[str, dict[str, Any]]:
    """A channel's messages, references resolved."""
    messages = doc["channels"][channel]["messages"]
    return {name: resolve(doc, item["$ref"]) for name, item in messages.items()}


def test_the_document_is_asyncapi_3(doc: dict[str, Any]) -> None:
    """It validates against the AsyncAPI 3.0 object model, and every $ref resolves."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the model's own field-name warnings
        from asyncapi3 import AsyncAPI3

    assert doc["asyncapi"] == "3.0.0"
    AsyncAPI3.model_validate(doc)
    for ref in refs(doc):
        try:
            resolve(doc, ref)
        except (KeyError, TypeError):
            pytest.fail(f"{ref} does not resolve")


def test_every_topic_is_a_channel(doc: dict[str, Any], topics: TopicSettings) -> None:
    """One channel per TopicSettings topic, at its address, with its partitions and config."""
    names = topic_properties()
    assert set(doc["channels"]) == set(names)
    specs = {spec.name: spec for spec in topics.specs}
    assert set(specs) == {getattr(topics, name) for name in names}
    for name in names:
        channel = doc["channels"][name]
        address = getattr(topics, name)
        assert channel["address"] == address, name
        kafka = channel["bindings"]["kafka"]
        spec = specs[address]
        assert kafka["topic"] == address
        assert kafka["partitions"] == spec.partitions, name
        assert kafka["replicas"] == topics.replication_factor, name
        config = kafka["topicConfiguration"]
        assert ",".join(config["cleanup.policy"]) == spec.config["cleanup.policy"], name
        if "retention.ms" in spec.config:
            assert config["retention.ms"] == int(spec.config["retention.ms"]), name


def test_payloads_are_the_avsc_files_verbatim(doc: dict[str, Any]) -> None:
    """Every schema of schemas/ is embedded unchanged, in Avro schema format."""
    schemas = doc["components"]["schemas"]
    for event_type, filename in SCHEMA_FILES.items():
        embedded = schemas[event_type]
        assert embedded["schemaFormat"] == AVRO_FORMAT, event_type
        on_disk = json.loads((SCHEMA_DIR / filename).read_text())
        assert embedded["schema"] == on_disk, f"{filename} changed: update asyncapi.yaml"
    assert {path.name for path in SCHEMA_DIR.glob("*.avsc")} == set(SCHEMA_FILES.values())


def test_each_message_carries_its_event_type(doc: dict[str, Any]) -> None:
    """Messages are named by event type, framed as the code frames them, keyed by task id."""
    messages = doc["components"]["messages"]
    assert set(messages) == set(SCHEMA_FILES)
    for event_type, message in messages.items():
        assert message["name"] == event_type
        assert resolve(doc, message["payload"]["$ref"]) is doc["components"]["schemas"][event_type]
        assert message["contentType"] == CONTENT_TYPE, event_type
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string" and "task id" in key["description"]


def test_channels_carry_the_events_the_code_writes_there(doc: dict[str, Any]) -> None:
    """Each channel's message is the event type the code publishes on that topic."""
    sources = {
        "producer_api/publisher.py": r"self\.topics\.(\w+), \"(\w+)\"",
        "inference_consumer/emitter.py": r"\"(\w+)\", self\.topics\.(\w+)",
    }
    written: set[tuple[str, str]] = set()
    for path, pattern in sources.items():
        for match in re.findall(pattern, (ROOT / path).read_text()):
            topic, event = match if path.startswith("producer_api") else match[::-1]
            written.add((topic, event))
    written.add(("dead_letters", "DeadLetter"))
    written.add(("task_state", "TaskStateChanged"))
    assert len(written) >= 6, written
    for topic, event in written:
        assert event in channel_messages(doc, topic), f"{topic} carries {event}"
    for topic in doc["channels"]:
        assert {t for t, _ in written} >= {topic}, f"nothing in the code writes {topic}"


def test_headers_are_the_ones_every_event_carries(doc: dict[str, Any]) -> None:
    """The headers schema lists exactly what schemas.headers.event_headers writes."""
    names = [name for name, _ in event_headers(load_schema("TaskRequest"), "t", "p")]
    headers = doc["components"]["schemas"]["EventHeaders"]
    assert set(headers["properties"]) == set(names)
    assert set(headers["required"]) == set(names)
    assert CONTENT_TYPE in headers["properties"]["content-type"]["examples"]
    for event_type, message in doc["components"]["messages"].items():
        schema = resolve(doc, message["headers"]["$ref"])
        assert set(schema["properties"]) >= set(names), event_type


def test_dead_letter_headers_name_the_error(doc: dict[str, Any]) -> None:
    """The dead-letter headers are the error headers the worker's emitter adds."""
    emitter = (ROOT / "inference_consumer" / "emitter.py").read_text()
    added = set(re.findall(r"\(\"((?:error|source|value)[\w-]*)\"", emitter))
    assert added >= {"error-type", "error-message", "source"}
    headers = resolve(doc, doc["components"]["messages"]["DeadLetter"]["headers"]["$ref"])
    event = set(doc["components"]["schemas"]["EventHeaders"]["properties"])
    assert set(headers["properties"]) - event == added


def test_who_produces_and_consumes_each_topic(doc: dict[str, Any]) -> None:
    """Every channel has a sender and a receiver, and each operation's service uses that topic."""
    actions: dict[str, set[str]] = {name: set() for name in doc["channels"]}
    for op_id, operation in doc["operations"].items():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        (tag,) = [tag["name"] for tag in operation["tags"]]
        assert tag in SERVICES, op_id
        code = "\n".join(path.read_text() for path in (ROOT / tag).rglob("*.py"))
        assert re.search(rf"(topics|topic_settings)\.{channel}\b", code), f"{op_id}: {tag}"
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/"), op_id
        actions[channel].add(operation["action"])
    for channel, seen in actions.items():
        assert "send" in seen, f"nobody sends to {channel}"
        if channel not in READ_OUTSIDE:
            assert "receive" in seen, f"nobody receives {channel}"
        assert doc["channels"][channel]["x-consumers"], channel
