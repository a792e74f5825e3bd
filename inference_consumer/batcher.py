"""Dynamic batching: what is queued now, up to ``max_batch``, waiting at most
``max_wait`` after the first message for more.

librdkafka's ``consume(n, timeout)`` blocks until it has ``n`` messages or the
timeout expires, so asking for a whole batch at once would hold a lone task
for the full poll timeout. The batcher waits for one message, then drains
what the client has already fetched without blocking, and waits only
``max_wait`` for stragglers. Under load the next batch has queued up while
the model ran, so batches are full without any waiting.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, Message

__all__ = ["collect_batch"]

log = logging.getLogger(__name__)


def collect_batch(
    consumer: Consumer, max_batch: int, max_wait_s: float, poll_timeout_s: float
) -> list[Message]:
    """Messages for one forward pass; empty if none arrived within ``poll_timeout_s``.

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
        straggler = _valid(consumer.consume(1, timeout=remaining))
        if not straggler:
            break
        batch.extend(straggler)
    return batch


def _valid(messages: list[Message]) -> list[Message]:
    """The messages that are not errors; errors are logged."""
    valid = []
    for message in messages:
        if message.error():
            log.warning("consumer error", extra={"error": str(message.error())})
        else:
            valid.append(message)
    return valid
