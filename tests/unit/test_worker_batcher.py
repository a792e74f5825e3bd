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


class TimedConsumer:
    """Messages that arrive at given times on a simulated clock: ``consume`` returns
    what has arrived, waiting (in simulated time) at most ``timeout`` for the next."""

    def __init__(self, arrivals: list[float]) -> None:
        self.now = 0.0
        self._arrivals = sorted(arrivals)

    def clock(self) -> float:
        return self.now

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        upcoming = self._arrivals[0] if self._arrivals else float("inf")
        if upcoming > self.now:
            self.now = min(self.now + timeout, upcoming)
        arrived = [a for a in self._arrivals[:num_messages] if a <= self.now]
        self._arrivals = self._arrivals[len(arrived) :]
        return [FakeEvent() for _ in arrived]


def _collect(
    arrivals: list[float], max_wait_s: float, gap_s: float | None, monkeypatch: Any
) -> tuple[int, float]:
    """How many messages a batch took, and when (simulated) it was handed over."""
    consumer = TimedConsumer(arrivals)
    monkeypatch.setattr("inference_consumer.batcher.time.monotonic", consumer.clock)
    batch = collect_batch(consumer, 32, max_wait_s, 0.1, gap_s)  # type: ignore[arg-type]
    return len(batch), consumer.now


def test_the_linger_ends_when_no_straggler_came_for_the_gap(monkeypatch: Any) -> None:
    # Two stragglers 40 ms apart, then silence until 250 ms: every client is waiting.
    arrivals = [0.0, 0.04, 0.08, 0.25]
    size, handed_at = _collect(arrivals, 0.3, 0.06, monkeypatch)
    assert (size, round(handed_at, 3)) == (3, 0.14)  # the last one + the 60 ms gap
    # Without a gap the batch waits for the late one, and then the whole max_wait.
    assert _collect(arrivals, 0.3, None, monkeypatch) == (4, 0.3)


def test_stragglers_that_keep_coming_fill_the_batch_up_to_max_wait(monkeypatch: Any) -> None:
    arrivals = [i * 0.02 for i in range(40)]  # one every 20 ms: a burst
    size, handed_at = _collect(arrivals, 0.3, 0.06, monkeypatch)
    assert size == 16 and round(handed_at, 3) == 0.3  # 0, 20, ..., 300 ms
    # A full batch goes at once.
    assert _collect([0.0] * 40, 0.3, 0.06, monkeypatch) == (32, 0.0)
