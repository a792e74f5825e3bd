"""The worker's batcher: a consumer's fatal error must replace the consumer (issue #9).

After a broker restart a static member was fenced ("Static consumer fenced by
other consumer with same group.instance.id"). librdkafka hands that to consume()
as an error with code _FATAL whose ``fatal()`` flag is not set; the batcher
logged it as a mere warning and the worker kept polling a dead consumer.
"""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError

from inference_consumer.batcher import ConsumerFailed, collect_batch, is_fatal


class FakeEvent:
    """A consumed message or error event."""

    def __init__(self, error: KafkaError | None = None) -> None:
        self._error = error

    def error(self) -> KafkaError | None:
        return self._error


class FakeConsumer:
    """Hands out the queued events, one consume() call at a time."""

    def __init__(self, *calls: list[FakeEvent]) -> None:
        self._calls = list(calls)

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return self._calls.pop(0) if self._calls else []


FENCED = "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id"


def test_a_fatal_error_event_without_the_fatal_flag_fails_the_consumer() -> None:
    event = FakeEvent(KafkaError(KafkaError._FATAL, FENCED))  # as consume() returns it
    with pytest.raises(ConsumerFailed, match="fenced"):
        collect_batch(FakeConsumer([event]), 8, 0.0, 0.01)  # type: ignore[arg-type]


def test_transient_errors_are_skipped_and_messages_kept() -> None:
    transport = FakeEvent(KafkaError(KafkaError._TRANSPORT, "broker down"))
    message = FakeEvent()
    consumer = FakeConsumer([message], [transport, message])
    batch = collect_batch(consumer, 8, 0.0, 0.01)  # type: ignore[arg-type]
    assert batch == [message, message]


def test_is_fatal() -> None:
    assert is_fatal(KafkaError(KafkaError._FATAL, FENCED))
    assert is_fatal(KafkaError(KafkaError.UNKNOWN_MEMBER_ID, "x", fatal=True))
    assert not is_fatal(KafkaError(KafkaError._TRANSPORT, "broker down"))
