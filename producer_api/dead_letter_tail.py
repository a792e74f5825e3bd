"""The last few messages of the dead-letter topic, as the monitor lists them.

A dead letter's headers say what failed and why (the worker writes
``error-type``, ``error-message``, ``source`` and ``task-id``), so the body is
never decoded. The topic is read again only when its end offsets moved.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from asyncarch.config import KafkaSettings
from schemas.headers import header_value

__all__ = ["DeadLetterTail"]

MESSAGE_CHARS = 500


class DeadLetterTail:
    """Reads the newest ``count`` dead letters across the topic's partitions."""

    def __init__(self, kafka: KafkaSettings, topic: str, count: int, timeout_s: float) -> None:
        self.topic, self.count, self.timeout_s = topic, count, timeout_s
        self._consumer = Consumer(
            kafka.librdkafka(
                **{
                    # Assigned, never subscribed, never committing: the group is a formality.
                    "group.id": f"asyncarch-monitor-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "isolation.level": "read_committed",
                    "log_level": 2,
                }
            )
        )
        self._read_at: dict[int, int] | None = None
        self._letters: list[dict[str, Any]] = []

    def read(self, starts: dict[int, int], ends: dict[int, int]) -> list[dict[str, Any]]:
        """Newest first; reads the topic only when ``ends`` differ from the last read."""
        if ends != self._read_at:
            self._letters = self._fetch(starts, ends)
            self._read_at = dict(ends)
        return self._letters

    def close(self) -> None:
        """Close the reader."""
        self._consumer.close()

    def _fetch(self, starts: dict[int, int], ends: dict[int, int]) -> list[dict[str, Any]]:
        assignment = [
            TopicPartition(self.topic, p, max(starts.get(p, 0), end - self.count))
            for p, end in ends.items()
            if end > starts.get(p, 0)
        ]
        if not assignment:
            return []
        self._consumer.assign(assignment)
        try:
            messages = self._until_eof({tp.partition for tp in assignment})
        finally:
            self._consumer.unassign()
        letters = sorted(
            (_letter(m) for m in messages), key=lambda letter: letter["at"], reverse=True
        )
        return letters[: self.count]

    def _until_eof(self, partitions: set[int]) -> list[Message]:
        """Messages up to each partition's end; KafkaException if that takes too long."""
        deadline = time.monotonic() + self.timeout_s
        messages: list[Message] = []
        while partitions:
            if time.monotonic() > deadline:
                raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "dead letters not read"))
            for message in self._consumer.consume(500, timeout=0.1):
                error = message.error()
                if error is None:
                    messages.append(message)
                elif error.code() == KafkaError._PARTITION_EOF:
                    partitions.discard(message.partition())
                else:
                    raise KafkaException(error)
        return messages


def _letter(message: Message) -> dict[str, Any]:
    """The headers of one dead letter that say what failed and why."""
    headers = message.headers()
    _, timestamp = message.timestamp()
    return {
        "at": timestamp,
        "partition": message.partition(),
        "offset": message.offset(),
        "task_id": header_value(headers, "task-id"),
        "source": header_value(headers, "source"),
        "error_type": header_value(headers, "error-type"),
        "error_message": (header_value(headers, "error-message") or "")[:MESSAGE_CHARS],
    }
