"""The worker's BatchCommitter when librdkafka does not return (issue #9).

After a broker SIGKILL and restart, ``send_offsets_to_transaction`` was seen
blocked for good in librdkafka (``rd_kafka_txn_op_req0`` waiting without a
timeout; confluentinc/librdkafka#5456): the commit thread never returned and
the worker stalled without logging. Here a fake producer blocks the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from inference_consumer.committer import BatchCommitter, FinishedBatch, Outcome
from inference_consumer.transactions import TransactionStuck, call_with_deadline

# A regression hangs: fail it fast.
pytestmark = pytest.mark.timeout(30)
DEADLINE_S = 0.2


class FakeMessage:
    """What the committer reads of a consumed message."""

    def __init__(self, partition: int, offset: int) -> None:
        self._partition, self._offset = partition, offset

    def topic(self) -> str:
        return "requests"

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset


class FakeProducer:
    """Records the transactional calls; ``send_offsets_to_transaction`` blocks until
    ``release`` is set when the producer is ``stuck``."""

    def __init__(self, stuck: bool = False) -> None:
        self.stuck = stuck
        self.release = threading.Event()
        self.returned = threading.Event()
        self.calls: list[str] = []

    def init_transactions(self, timeout: float) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        self.calls.append("send_offsets")
        if self.stuck:
            self.release.wait()
            self.returned.set()

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")

    def purge(self, **_: Any) -> None:
        self.calls.append("purge")


def _batch(offset: int) -> FinishedBatch:
    return FinishedBatch([FakeMessage(0, offset)], [], [], [])  # type: ignore[list-item]


@pytest.fixture
def producers() -> Iterator[list[FakeProducer]]:
    made = [FakeProducer(stuck=True), FakeProducer()]
    yield made
    made[0].release.set()  # lets the abandoned call's thread end


def _committer(producers: list[FakeProducer]) -> BatchCommitter:
    unused = iter(producers)
    committer = BatchCommitter(
        lambda: next(unused),  # type: ignore[arg-type, return-value]
        emitter=None,  # type: ignore[arg-type]  # batches without tasks emit nothing
        keep_trying=lambda: True,
        transaction_timeout_s=1.0,
        send_offsets_deadline_s=DEADLINE_S,
    )
    committer.init()
    return committer


def test_a_send_offsets_call_that_never_returns_replaces_the_producer(
    producers: list[FakeProducer],
) -> None:
    _, fresh = producers
    committer = _committer(producers)
    started = time.monotonic()
    committer.submit(_batch(0))
    # The worker rewinds to the committed offsets on UNKNOWN: the batch is consumed again.
    assert committer.wait() is Outcome.UNKNOWN
    assert time.monotonic() - started < 5
    assert committer.producer is fresh and fresh.calls == ["init"]  # it fenced the stuck one

    committer.submit(_batch(0))
    assert committer.wait() is Outcome.COMMITTED
    assert fresh.calls == ["init", "begin", "send_offsets", "commit"]
    committer.close()


def test_the_abandoned_producer_never_commits_when_its_call_returns_late(
    producers: list[FakeProducer],
) -> None:
    stuck, _ = producers
    committer = _committer(producers)
    committer.submit(_batch(0))
    assert committer.wait() is Outcome.UNKNOWN
    stuck.release.set()
    committer.submit(_batch(1))
    assert committer.wait() is Outcome.COMMITTED
    committer.close()
    assert stuck.returned.wait(5)
    assert stuck.calls == ["init", "begin", "send_offsets", "purge"]


def test_call_with_deadline_returns_raises_or_gives_up() -> None:
    assert call_with_deadline(lambda: 42, "answer", 1.0) == 42

    def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        call_with_deadline(fails, "fails", 1.0)
    never = threading.Event()
    try:
        with pytest.raises(TransactionStuck, match="blocked"):
            call_with_deadline(never.wait, "blocked", DEADLINE_S)
    finally:
        never.set()
