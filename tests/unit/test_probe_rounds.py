"""Queries waiting at once share one broker probe, and never an older one."""

from __future__ import annotations

import asyncio

import pytest

from stream_processors.probe_rounds import ProbeRounds


class Broker:
    """A probe whose answer is the time it started (the end offset it would read)."""

    def __init__(self) -> None:
        self.clock = 0
        self.release = asyncio.Event()
        self.calls: list[str] = []

    async def probe(self, key: str) -> int:
        self.calls.append(key)
        started_at = self.clock
        await self.release.wait()
        return started_at


async def test_queries_waiting_together_share_one_probe_per_key() -> None:
    broker = Broker()
    rounds: ProbeRounds[str, int] = ProbeRounds(broker.probe)
    waiting = [asyncio.create_task(rounds.get("p0")) for _ in range(20)]
    other = asyncio.create_task(rounds.get("p1"))
    await asyncio.sleep(0.01)
    broker.release.set()
    assert await asyncio.gather(*waiting) == [0] * 20
    assert await other == 0
    assert sorted(broker.calls) == ["p0", "p1"]
    assert rounds.started == 2


async def test_a_query_arriving_during_a_probe_waits_for_the_next_one() -> None:
    """The running probe read the end offset before this query came: too old for it."""
    broker = Broker()
    rounds: ProbeRounds[str, int] = ProbeRounds(broker.probe)
    early = asyncio.create_task(rounds.get("p0"))
    await asyncio.sleep(0.01)  # the first probe is running
    broker.clock = 1  # the late client's request is acknowledged now
    late = [asyncio.create_task(rounds.get("p0")) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert broker.calls == ["p0"]  # one at a time per key
    broker.release.set()
    assert await early == 0
    assert await asyncio.gather(*late) == [1] * 5  # one shared round, started after them
    assert rounds.started == 2


async def test_a_failed_probe_fails_its_callers_and_the_next_round_runs() -> None:
    calls = 0

    async def flaky(key: str) -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise ConnectionError("broker down")
        return calls

    rounds: ProbeRounds[str, int] = ProbeRounds(flaky)
    first = [asyncio.create_task(rounds.get("p0")) for _ in range(3)]
    results = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert await rounds.get("p0") == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_others_probe() -> None:
    broker = Broker()
    rounds: ProbeRounds[str, int] = ProbeRounds(broker.probe)
    impatient = asyncio.create_task(rounds.get("p0"))
    patient = asyncio.create_task(rounds.get("p0"))
    await asyncio.sleep(0.01)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    broker.release.set()
    assert await patient == 0
