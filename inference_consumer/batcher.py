"""Dynamic batching: up to ``max_batch`` messages or ``max_wait`` after the first."""

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
    batch: list[Message] = []
    deadline = time.monotonic() + poll_timeout_s
    while len(batch) < max_batch:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for message in consumer.consume(max_batch - len(batch), timeout=remaining):
            if message.error():
                log.warning("consumer error", extra={"error": str(message.error())})
                continue
            if not batch:
                deadline = min(deadline, time.monotonic() + max_wait_s)
            batch.append(message)
    return batch
