"""Shares one broker probe among the queries that wait for the same answer.

A read-your-writes check asks the broker for a partition's end offset and the
group's commit. Under a burst, dozens of queries of the same partition ask at
once; each round trip costs the broker and a thread. A probe answers every
query that was waiting *before it started* (the end offset it reads then covers
what those clients were acknowledged), so queries join the next round that has
not started yet, and at most one round per key runs at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ProbeRounds"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class ProbeRounds(Generic[K, T]):
    """Single-flight probes per key, each started after every caller that joined it."""

    def __init__(self, probe: Callable[[K], Awaitable[T]]) -> None:
        self._probe = probe
        self._next: dict[K, asyncio.Future[T]] = {}  # joinable: not started yet
        self._running: dict[K, asyncio.Future[T]] = {}
        self.started = 0  # probes run so far (for tests and metrics)

    async def get(self, key: K) -> T:
        """The result of a probe of ``key`` that starts after this call."""
        round_ = self._next.get(key)
        if round_ is None:
            round_ = asyncio.ensure_future(self._run(key))
            self._next[key] = round_
        # One caller giving up (a client gone) must not cancel the others' probe.
        return await asyncio.shield(round_)

    async def _run(self, key: K) -> T:
        previous = self._running.get(key)
        if previous is not None:
            await asyncio.wait([previous])  # its outcome is its own callers'
        this = self._next.pop(key)
        self._running[key] = this
        self.started += 1
        try:
            return await self._probe(key)
        finally:
            if self._running.get(key) is this:
                del self._running[key]
