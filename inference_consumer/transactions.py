"""Kafka transaction calls that ride out a broker that is away for a while.

librdkafka classifies each failure of a transactional call: *retriable*
(call it again: the broker is away or busy), *abortable* (abort the
transaction and process the batch again) or *fatal* (this producer is
fenced by a newer one with the same ``transactional.id``: give up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from confluent_kafka import KafkaException

from inference_consumer.metrics import STAGE_SECONDS, TRANSACTION_RETRIES

__all__ = ["TransactionStuck", "call_with_deadline", "retry_retriable", "stage"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransactionStuck(Exception):
    """A transactional call kept failing with retriable errors past its bound, or
    did not return at all.

    Both seen after a broker restart: librdkafka's request to the transaction
    coordinator stays in its out-queue and every retry times out; or
    ``send_offsets_to_transaction`` waits for the group coordinator forever. The
    outcome of the transaction is unknown; only a new producer gets unstuck.
    """


def call_with_deadline(operation: Callable[[], T], name: str, deadline_s: float) -> T:
    """``operation()`` on a daemon thread of its own, waited for at most ``deadline_s``.

    For a librdkafka call whose own timeout is not enforced: past the deadline
    it raises TransactionStuck and leaves the call blocked on its thread, so the
    client it was made on must be abandoned (never called or destroyed again).
    """
    done = threading.Event()
    results: list[T] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(operation())
        except BaseException as exc:  # raised again on the caller's thread below
            errors.append(exc)
        finally:
            done.set()

    threading.Thread(target=call, name=f"txn-{name}", daemon=True).start()
    if not done.wait(deadline_s):
        raise TransactionStuck(f"{name}: librdkafka did not return within {deadline_s:.0f} s")
    if errors:
        raise errors[0]
    return results[0]


def retry_retriable(
    operation: Callable[[], T],
    name: str,
    keep_trying: Callable[[], bool],
    max_delay_s: float = 2.0,
    give_up_after_s: float | None = None,
) -> T:
    """``operation()``, called again with backoff while it fails with a retriable error.

    Raises the last KafkaException when it is not retriable, or once
    ``keep_trying()`` says to stop (the worker is shutting down), and
    TransactionStuck once ``give_up_after_s`` has passed.
    """
    delay = 0.05
    deadline = None if give_up_after_s is None else time.monotonic() + give_up_after_s
    while True:
        try:
            return operation()
        except KafkaException as exc:
            error = exc.args[0]
            if not error.retriable() or not keep_trying():
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise TransactionStuck(f"{name}: {error}") from exc
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
