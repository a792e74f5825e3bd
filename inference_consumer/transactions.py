"""Kafka transaction calls that ride out a broker that is away for a while.

librdkafka classifies each failure of a transactional call: *retriable*
(call it again: the broker is away or busy), *abortable* (abort the
transaction and process the batch again) or *fatal* (this producer is
fenced by a newer one with the same ``transactional.id``: give up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from confluent_kafka import KafkaException

from inference_consumer.metrics import STAGE_SECONDS, TRANSACTION_RETRIES

__all__ = ["retry_retriable", "stage"]

log = logging.getLogger(__name__)
T = TypeVar("T")


def retry_retriable(
    operation: Callable[[], T],
    name: str,
    keep_trying: Callable[[], bool],
    max_delay_s: float = 2.0,
) -> T:
    """``operation()``, called again with backoff while it fails with a retriable error.

    Raises the last KafkaException when it is not retriable, or once
    ``keep_trying()`` says to stop (the worker is shutting down).
    """
    delay = 0.05
    while True:
        try:
            return operation()
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() or not keep_trying():
                raise
            TRANSACTION_RETRIES.labels(operation=name).inc()
            log.warning(
                "transaction call failed; retrying",
                extra={"operation": name, "error": str(error), "retry_in_s": delay},
            )
            time.sleep(delay)
            delay = min(delay * 2, max_delay_s)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of a batch into ``asyncarch_worker_stage_seconds{stage=name}``."""
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(stage=name).observe(time.perf_counter() - started)
