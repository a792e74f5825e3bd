"""The worker's loop while the schema registry is unavailable.

A batch whose events cannot be decoded or encoded because the registry does
not answer is not at fault: the worker rewinds to the batch's first offsets
(nothing of it is committed or dead-lettered), waits a backoff that grows while
the outage lasts, and consumes the batch again.
"""

from __future__ import annotations

from typing import Any

import pytest

from asyncarch.backoff import Backoff
from inference_consumer import worker as worker_module
from inference_consumer.worker import InferenceWorker
from schemas.exceptions import SchemaRegistryError
from tests.unit.test_worker_rebalance import TOPIC, FakeConsumer, FakeMessage

# The worker sleeps in steps of 0.1 s until the wait is over.
STEP = 0.11


class Clock:
    """time.monotonic and time.sleep as the worker's module sees them, without waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(worker_module.time, "monotonic", fake.monotonic)
    monkeypatch.setattr(worker_module.time, "sleep", fake.sleep)
    return fake


def _batch(*offsets: tuple[int, int]) -> list[Any]:
    """Messages at (partition, offset)."""
    return [FakeMessage(partition, offset) for partition, offset in offsets]


def _worker(consumer: FakeConsumer, revoked: frozenset[int] = frozenset()) -> InferenceWorker:
    worker = InferenceWorker.__new__(InferenceWorker)  # only the loop's state
    worker.consumer = consumer  # type: ignore[assignment]
    worker._revoked = {(TOPIC, p) for p in revoked}
    worker._running = True
    worker._registry_backoff = Backoff(initial_s=0.5, maximum_s=2.0)
    return worker


def test_the_batch_is_consumed_again_from_its_first_offsets(clock: Clock) -> None:
    consumer = FakeConsumer(committed={})
    worker = _worker(consumer)
    batch = _batch((0, 7), (1, 3), (0, 8), (1, 4))
    worker._wait_for_registry(SchemaRegistryError("registry down"), batch)
    assert sorted(consumer.seeks) == [(0, 7), (1, 3)]
    assert clock.slept == pytest.approx(0.5, abs=STEP)


def test_a_partition_revoked_meanwhile_is_left_to_its_new_owner(clock: Clock) -> None:
    consumer = FakeConsumer(committed={})
    worker = _worker(consumer, revoked=frozenset({1}))
    worker._wait_for_registry(SchemaRegistryError("registry down"), _batch((0, 7), (1, 3)))
    assert consumer.seeks == [(0, 7)]


def test_the_wait_grows_while_the_outage_lasts_and_resets_after(clock: Clock) -> None:
    worker = _worker(FakeConsumer(committed={}))
    waits = []
    for _ in range(4):
        before = clock.slept
        worker._wait_for_registry(SchemaRegistryError("down"), _batch((0, 1)))
        waits.append(clock.slept - before)
    assert waits == pytest.approx([0.5, 1.0, 2.0, 2.0], abs=STEP)  # capped at maximum_s
    worker._registry_backoff.succeeded()  # a batch went through
    before = clock.slept
    worker._wait_for_registry(SchemaRegistryError("down"), _batch((0, 1)))
    assert clock.slept - before == pytest.approx(0.5, abs=STEP)


def test_a_stopping_worker_does_not_sit_out_the_wait(clock: Clock) -> None:
    worker = _worker(FakeConsumer(committed={}))
    worker._running = False  # SIGTERM arrived
    worker._wait_for_registry(SchemaRegistryError("down"), _batch((0, 1)))
    assert clock.slept == 0.0
