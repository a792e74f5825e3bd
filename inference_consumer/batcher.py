"""Dynamic batching: what is queued now, up to ``max_batch``, lingering at most
``max_wait`` after the first message for more, and only under load.

librdkafka's ``consume(n, timeout)`` blocks until it has ``n`` messages or the
timeout expires, so asking for a whole batch at once would hold a lone task
for the full poll timeout. The batcher waits for one message, then drains
what the client has already fetched without blocking, then lingers for
stragglers. It lingers only after a batch of more than one message: a lone
task on an idle worker runs at once, while under load a linger makes batches
(and so transactions, each a handful of broker requests, and forward passes)
fewer and larger.

The linger ends early when no straggler came for ``gap``: once every client
that could send more is waiting for an answer, nothing more will come, and
waiting on would only add latency. Under a burst stragglers keep coming, and
the batch grows until ``max_wait`` or ``max_batch``.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, Message

__all__ = ["ConsumerFailed", "collect_batch", "is_fatal", "linger_after"]

log = logging.getLogger(__name__)


class ConsumerFailed(Exception):
    """The consumer hit a fatal error (e.g. its static membership was fenced after a
    broker restart): it will never deliver again and must be replaced."""


def collect_batch(
    consumer: Consumer,
    max_batch: int,
    max_wait_s: float,
    poll_timeout_s: float,
    gap_s: float | None = None,
) -> list[Message]:
    """Messages for one forward pass; empty if none arrived within ``poll_timeout_s``.

    After what is queued, it waits for stragglers until ``max_wait_s`` has passed
    since the first message, or (with ``gap_s``) until none came for ``gap_s``.

    The wait is bounded, so a loop built on it always returns to the consumer
    well within ``max.poll.interval.ms``.
    """
    batch = _valid(consumer.consume(1, timeout=poll_timeout_s))
    if not batch:
        return batch
    deadline = time.monotonic() + max_wait_s
    while len(batch) < max_batch:
        queued = _valid(consumer.consume(max_batch - len(batch), timeout=0))
        if queued:
            batch.extend(queued)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        wait_s = remaining if gap_s is None else min(remaining, gap_s)
        straggler = _valid(consumer.consume(1, timeout=wait_s))
        if not straggler:
            break
        batch.extend(straggler)
    return batch


def linger_after(batch: list[Message], max_wait_s: float) -> float:
    """How long the next batch lingers for stragglers: ``max_wait_s`` while tasks
    come more than one at a time, nothing when the last batch was a lone task."""
    return max_wait_s if len(batch) > 1 else 0.0


def _valid(messages: list[Message]) -> list[Message]:
    """The messages that are not errors; errors are logged, a fatal one raised."""
    valid = []
    for message in messages:
        error = message.error()
        if error is not None and is_fatal(error):
            raise ConsumerFailed(str(error))
        if error is not None:
            log.warning("consumer error", extra={"error": str(error)})
        else:
            valid.append(message)
    return valid


def is_fatal(error: KafkaError) -> bool:
    """A consumer's fatal error (e.g. its static membership fenced) reaches consume()
    as an error event with code _FATAL whose ``fatal()`` flag is not set: only the
    error that librdkafka's fatal_error() returns carries the flag."""
    return bool(error.fatal()) or error.code() == KafkaError._FATAL
