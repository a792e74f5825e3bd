"""Turns raw Kafka messages of the three task topics into state-machine events."""

from __future__ import annotations

from typing import Any

from schemas.codec import AvroCodec, codec_for
from schemas.topics import TopicSettings
from stream_processors.state_machine import PENDING, SUCCESS, TaskEvent

__all__ = ["event_codec", "to_task_event"]


def event_codec(topics: TopicSettings, topic: str) -> AvroCodec:
    """The codec of the events on ``topic``: requests, results, or statuses."""
    if topic == topics.requests:
        return codec_for("TaskRequest")
    if topic == topics.results:
        return codec_for("TaskResult")
    return codec_for("TaskStatus")


def to_task_event(topics: TopicSettings, topic: str, value: bytes) -> TaskEvent:
    """Decode ``value`` read from ``topic``; raises EventDecodeError."""
    codec = event_codec(topics, topic)
    if topic == topics.requests:
        request = codec.decode(value)
        return TaskEvent(
            request["task_id"],
            PENDING,
            _ms(request["submitted_at"]),
            attempt=0,
            request={**request, "submitted_at": _ms(request["submitted_at"])},
        )
    if topic == topics.results:
        result = codec.decode(value)
        return TaskEvent(
            result["task_id"],
            SUCCESS,
            _ms(result["completed_at"]),
            attempt=result["attempt"],
            result=_result_view(result),
        )
    status = codec.decode(value)
    return TaskEvent(
        status["task_id"],
        status["state"],
        _ms(status["occurred_at"]),
        attempt=status["attempt"],
        error=status["error"],
        progress=status["progress"],
    )


def _result_view(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "output": result["output"],
        "model": result["model"],
        "worker": result["worker"],
        "duration_ms": result["duration_ms"],
    }


def _ms(value: Any) -> int:
    """fastavro returns timestamp-millis as datetime; the table stores epoch millis."""
    return value if isinstance(value, int) else int(value.timestamp() * 1000)
