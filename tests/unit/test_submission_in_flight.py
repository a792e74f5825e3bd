"""A retry with the same Idempotency-Key while the first try is still being accepted.

The client's first POST timed out (the registry or the broker was slow) and it
retried: the table cannot know of a request not yet written, so both used to be
written, and the task ran twice. The retry now waits for the first and replays
its answer. Pure asyncio: the publisher and the table client are stand-ins.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from asyncarch.config import DeliverySettings
from producer_api.exceptions import BrokerUnavailable, IdempotencyConflict, TaskNotFound
from producer_api.submission import Submission, Submitter

INPUTS = {"item_a": "TV", "item_b": "Samsung"}


class SlowPublisher:
    """Writes each request after ``release`` is set; records what it wrote."""

    def __init__(self, fail_first: bool = False) -> None:
        self.release = asyncio.Event()
        self.written: list[dict[str, Any]] = []
        self.fail_first = fail_first

    async def ensure_accepting(self) -> None:
        return None

    async def publish_request(self, request: dict[str, Any]) -> tuple[int, int]:
        await self.release.wait()
        if self.fail_first and not self.written:
            self.written.append({})
            raise BrokerUnavailable("Kafka did not acknowledge the event in time")
        self.written.append(request)
        return 0, len(self.written)


class UnknownTasks:
    """The table has none of these tasks yet."""

    async def get(self, task_id: str) -> dict[str, Any]:
        raise TaskNotFound(task_id)

    def remember_written(self, task_id: str, offset: int) -> None:
        return None


def _submitter(publisher: SlowPublisher) -> Submitter:
    return Submitter(publisher, UnknownTasks(), DeliverySettings(), {})  # type: ignore[arg-type]


def _submission(key: str | None, item_a: str = "TV") -> Submission:
    return Submission("similarity", {**INPUTS, "item_a": item_a}, None, "t1", key, None)


async def test_a_retry_waits_for_the_first_try_and_replays_it() -> None:
    publisher = SlowPublisher()
    submitter = _submitter(publisher)
    first = asyncio.create_task(submitter.accept(_submission("k1")))
    retry = asyncio.create_task(submitter.accept(_submission("k1")))
    await asyncio.sleep(0.01)
    publisher.release.set()
    (accepted, replayed), (again, replayed_again) = await asyncio.gather(first, retry)
    assert len(publisher.written) == 1
    assert again.task_id == accepted.task_id and (replayed, replayed_again) == (False, True)
    assert submitter.in_flight == {}


async def test_a_different_request_under_the_key_in_flight_is_a_conflict() -> None:
    publisher = SlowPublisher()
    submitter = _submitter(publisher)
    first = asyncio.create_task(submitter.accept(_submission("k1")))
    await asyncio.sleep(0.01)
    with pytest.raises(IdempotencyConflict):
        await submitter.accept(_submission("k1", item_a="radio"))
    publisher.release.set()
    await first
    assert len(publisher.written) == 1


async def test_a_retry_tries_for_itself_when_the_first_try_failed() -> None:
    publisher = SlowPublisher(fail_first=True)
    submitter = _submitter(publisher)
    first = asyncio.create_task(submitter.accept(_submission("k1")))
    retry = asyncio.create_task(submitter.accept(_submission("k1")))
    await asyncio.sleep(0.01)
    publisher.release.set()
    with pytest.raises(BrokerUnavailable):
        await first
    accepted, replayed = await retry
    assert not replayed and publisher.written[-1]["task_id"] == accepted.task_id
    assert submitter.in_flight == {}


async def test_submissions_without_a_key_are_never_joined() -> None:
    publisher = SlowPublisher()
    submitter = _submitter(publisher)
    both = [asyncio.create_task(submitter.accept(_submission(None))) for _ in range(2)]
    await asyncio.sleep(0.01)
    publisher.release.set()
    answers = await asyncio.gather(*both)
    assert len(publisher.written) == 2
    assert answers[0][0].task_id != answers[1][0].task_id
