"""``asyncarch tail``: a small downstream subscriber of the public task-state topic.

It shows what any other system can do with the compacted topic: read it with a
plain confluent-kafka consumer in a group of its own (``read_committed``), from
offset 0 to build a view of every task, or from the end to follow changes live.
Each change is printed as one line; a tombstone (value null) is a task that
expired. Ctrl-C (or SIGTERM) stops it cleanly.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message

from asyncarch.config import KafkaSettings
from schemas.codec import codec_for
from schemas.exceptions import EventDecodeError
from schemas.topics import TopicSettings
from stream_processors.public_state import EVENT_TYPE

__all__ = ["EXPIRED", "TailOptions", "describe_change", "run_tail", "tail"]

EXPIRED = "EXPIRED"  # what ``tail`` calls a tombstone


@dataclass(frozen=True)
class TailOptions:
    """What to print and where to start."""

    states: frozenset[str] = frozenset()  # empty: every state, and tombstones
    from_beginning: bool = False
    group_id: str | None = None  # None: a fresh group that commits nothing
    as_json: bool = False


def describe_change(task_id: str, change: Mapping[str, Any] | None, as_json: bool = False) -> str:
    """One line for one message of the task-state topic (``change`` None: a tombstone)."""
    if change is None:
        if as_json:
            return json.dumps({"task_id": task_id, "state": EXPIRED})
        return f"{_iso(None)} {task_id} {EXPIRED}"
    if as_json:
        return json.dumps({k: _ms(v) if k.endswith("_at") else v for k, v in change.items()})
    parts = [_iso(change["updated_at"]), task_id, f"{change['state']:<9}"]
    parts += [f"attempt={change['attempt']}", f"kind={change.get('kind') or '-'}"]
    parts += _result_words(change.get("result"))
    if error := change.get("error"):
        parts.append(f"error={error['type']}: {error['message']}")
    return " ".join(parts)


def tail(
    kafka: KafkaSettings,
    topics: TopicSettings,
    options: TailOptions,
    stop: threading.Event,
    out: TextIO = sys.stdout,
) -> int:
    """Print every task-state change until ``stop`` is set or Ctrl-C; returns 0."""
    consumer = Consumer(_consumer_config(kafka, topics, options))
    consumer.subscribe([topics.task_state], on_assign=_seek_to_start(options))
    try:
        while not stop.is_set():
            message = consumer.poll(0.5)
            if message is not None and (line := _line(message, options)):
                print(line, file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def run_tail(options: TailOptions) -> int:
    """``tail`` with settings from the environment; Ctrl-C or SIGTERM stops it.

    Both get a handler of their own: a process started in the background by a
    non-interactive shell inherits SIGINT ignored, and Ctrl-C (or ``kill -INT``)
    would then never reach Python's default handler.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return tail(KafkaSettings(), TopicSettings(), options, stop)


def _consumer_config(
    kafka: KafkaSettings, topics: TopicSettings, options: TailOptions
) -> dict[str, Any]:
    return kafka.librdkafka(
        **{
            "group.id": options.group_id or f"{topics.prefix}-tail-{uuid.uuid4().hex[:12]}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest" if options.from_beginning else "latest",
            "enable.auto.commit": options.group_id is not None,
        }
    )


def _seek_to_start(options: TailOptions) -> Any:
    """An on_assign callback that rewinds a named group too when asked to."""

    def on_assign(consumer: Consumer, partitions: list[Any]) -> None:
        if options.from_beginning:
            for partition in partitions:
                partition.offset = OFFSET_BEGINNING
        consumer.assign(partitions)

    return on_assign


def _line(message: Message, options: TailOptions) -> str | None:
    """The line to print for a message, or None when it is filtered out."""
    if (error := message.error()) is not None:
        if error.code() != KafkaError._PARTITION_EOF:
            print(f"asyncarch tail: {error}", file=sys.stderr)
        return None
    task_id = (message.key() or b"").decode(errors="replace")
    try:
        change = codec_for(EVENT_TYPE).decode(message.value()) if message.value() else None
    except EventDecodeError as exc:
        print(f"asyncarch tail: skipped {task_id}: {exc}", file=sys.stderr)
        return None
    state = change["state"] if change else EXPIRED
    if options.states and state not in options.states:
        return None
    return describe_change(task_id, change, options.as_json)


def _result_words(result: Mapping[str, Any] | None) -> list[str]:
    if not result:
        return []
    words = []
    if result.get("similarity") is not None:
        words.append(f"similarity={result['similarity']:.4f}")
    if result.get("vector_count") is not None:
        words.append(f"vectors={result['vector_count']}x{result.get('dimensions')}")
    if result.get("passage_count") is not None:
        words.append(f"passages={result['passage_count']}")
    if result.get("top_score") is not None:
        words.append(f"top_score={result['top_score']:.4f}")
    return [*words, f"model={result['model']}", f"{result['duration_ms']:.1f}ms"]


def _ms(value: Any) -> Any:
    """fastavro reads timestamp-millis as datetime; JSON lines carry epoch ms."""
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else value


def _iso(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
