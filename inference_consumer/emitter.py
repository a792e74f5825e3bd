"""Builds and produces the workers' status, result and dead-letter events."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from confluent_kafka import Message, Producer

from asyncarch.clock import now_ms
from inference_consumer.inference import TaskOutcome
from inference_consumer.model import ModelIdentity
from schemas.codec import codec_for
from schemas.headers import child_traceparent, event_headers, header_value
from schemas.records import task_status_record
from schemas.topics import TopicSettings

__all__ = ["DEAD_LETTER_VALUE_LIMIT", "EventEmitter"]

# A dead letter carries the original value; one near Kafka's message size limit
# (about 1 MB) would make the dead letter itself too large, fail the transaction
# and stall its partition. Past this size the copy is cut (the original stays on
# its topic, at the offset the ``source`` header names).
DEAD_LETTER_VALUE_LIMIT = 256 * 1024


class EventEmitter:
    """Encodes events with the schemas and produces them, keyed by task id."""

    def __init__(self, topics: TopicSettings, worker_id: str, model: ModelIdentity) -> None:
        self.topics = topics
        self.worker_id = worker_id
        self.model = model
        self.producer_name = f"inference_consumer/{worker_id}"

    def status(
        self,
        producer: Producer,
        request: dict[str, Any],
        state: str,
        parent: Message | None = None,
        error: dict[str, str] | None = None,
        attempt: int = 1,
        progress: float | None = None,
    ) -> None:
        """Produce a TaskStatus event for a task."""
        event = task_status_record(
            request["task_id"],
            state,
            now_ms(),
            attempt=attempt,
            worker=self.worker_id,
            progress=progress,
            error=error,
        )
        self._produce(producer, "TaskStatus", self.topics.status, event, parent)

    def outcome(self, producer: Producer, outcome: TaskOutcome, parent: Message) -> None:
        """Produce the result of a successful task, or FAILED for a failed one."""
        request = outcome.request
        if outcome.output is None:
            error = {"type": outcome.error_type or "Error", "message": outcome.error_message or ""}
            self.status(producer, request, "FAILED", parent, error, outcome.attempt)
            self.dead_letter(producer, parent, error["type"], error["message"], outcome.error_stack)
            return
        event = {
            "task_id": request["task_id"],
            "kind": request["kind"],
            "output": outcome.output,
            "model": asdict(self.model),
            "attempt": outcome.attempt,
            "worker": self.worker_id,
            "duration_ms": outcome.duration_ms,
            "completed_at": now_ms(),
        }
        self._produce(producer, "TaskResult", self.topics.results, event, parent)

    def learn_schema_ids(self) -> None:
        """With a registry, learn the id of every schema this emitter writes, so
        that no later write needs the registry; raises SchemaRegistryError."""
        codec_for("TaskStatus").learn_schema_id(self.topics.status)
        codec_for("TaskResult").learn_schema_id(self.topics.results)
        codec_for("DeadLetter").learn_schema_id(self.topics.dead_letters)

    def dead_letter(
        self,
        producer: Producer,
        message: Message,
        error_type: str,
        error_message: str,
        stack: str | None = None,
    ) -> None:
        """Send an unprocessable message, unchanged, to the dead-letter topic.

        Headers carry the error, a stack summary when there is one, and the
        original topic/partition@offset.
        """
        value = message.value()
        event = {
            "source_topic": message.topic(),
            "source_partition": message.partition(),
            "source_offset": message.offset(),
            "key": message.key(),
            "value": value if value is None else value[:DEAD_LETTER_VALUE_LIMIT],
            "error_type": error_type,
            "error_message": error_message,
            "failed_at": now_ms(),
        }
        codec = codec_for("DeadLetter")
        key = message.key()
        headers = event_headers(
            codec.schema,
            (key or b"").decode(errors="replace"),
            self.producer_name,
            header_value(message.headers(), "traceparent"),
            codec.content_type,
        )
        headers += [
            ("error-type", error_type.encode()),
            ("error-message", error_message[:1000].encode()),
            ("source", f"{message.topic()}/{message.partition()}@{message.offset()}".encode()),
        ]
        if stack:
            headers.append(("error-stack", stack.encode()))
        if value is not None and len(value) > DEAD_LETTER_VALUE_LIMIT:
            headers.append(("value-truncated-from", str(len(value)).encode()))
        producer.produce(
            self.topics.dead_letters,
            key=key,
            value=codec.encode(event, self.topics.dead_letters),
            headers=headers,
        )

    def _produce(
        self,
        producer: Producer,
        event_type: str,
        topic: str,
        event: dict[str, Any],
        parent: Message | None,
    ) -> None:
        codec = codec_for(event_type)
        trace = child_traceparent(header_value(parent.headers(), "traceparent") if parent else None)
        producer.produce(
            topic,
            key=event["task_id"].encode(),
            value=codec.encode(event, topic),
            headers=event_headers(
                codec.schema, event["task_id"], self.producer_name, trace, codec.content_type
            ),
        )
