"""Background observers while a fault runs: reads that must never be wrong, and memory."""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Callable

import httpx

from tests.resilience.ledger import Ledger
from tests.resilience.pipeline import rss_bytes

__all__ = ["MemoryWatch", "ReadWatch"]

RANK = {"PENDING": 0, "RUNNING": 1, "RETRYING": 1, "SUCCESS": 2, "FAILED": 2, "CANCELLED": 2}


class ReadWatch(threading.Thread):
    """Keeps asking for accepted tasks and flags any wrong answer.

    Wrong: an accepted task reported unknown (404), or a state that moves
    backwards from one already seen. A 503 (recovering) is allowed.
    """

    def __init__(self, base_url: str, ledger: Ledger) -> None:
        super().__init__(name="read-watch", daemon=True)
        self.base_url, self.ledger = base_url, ledger
        self.seen: dict[str, int] = defaultdict(lambda: -1)
        self.wrong: list[str] = []
        self.answers: defaultdict[int, int] = defaultdict(int)
        self._halt = threading.Event()
        self._rng = random.Random(2)

    def run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=15) as client:
            while not self._halt.wait(0.05):
                ids = list(self.ledger.accepted)
                if ids:
                    self._check(client, self._rng.choice(ids))

    def _check(self, client: httpx.Client, task_id: str) -> None:
        try:
            response = client.get(f"/v1/tasks/{task_id}")
        except httpx.HTTPError:
            return
        self.answers[response.status_code] += 1
        if response.status_code == 404:
            self.wrong.append(f"{task_id}: 404 after 202")
        elif response.status_code == 200:
            rank = RANK.get(response.json()["status"], -1)
            if rank < self.seen[task_id]:
                self.wrong.append(f"{task_id}: went back to {response.json()['status']}")
            self.seen[task_id] = max(rank, self.seen[task_id])

    def stop(self) -> None:
        self._halt.set()
        self.join(20)


class MemoryWatch(threading.Thread):
    """Samples every process's RSS; keeps the first and the highest per name."""

    def __init__(self, pids: Callable[[], dict[str, int]], interval_s: float = 0.5) -> None:
        super().__init__(name="memory-watch", daemon=True)
        self.pids, self.interval_s = pids, interval_s
        self.first: dict[str, int] = {}
        self.peak: dict[str, int] = defaultdict(int)
        self._halt = threading.Event()

    def run(self) -> None:
        while True:
            for name, pid in self.pids().items():
                try:
                    rss = rss_bytes(pid)
                except OSError:
                    continue
                self.first.setdefault(name, rss)
                self.peak[name] = max(self.peak[name], rss)
            if self._halt.wait(self.interval_s):
                return

    def growth(self) -> dict[str, int]:
        """Peak minus first sample, bytes, per process."""
        return {name: self.peak[name] - first for name, first in self.first.items()}

    def stop(self) -> None:
        self._halt.set()
        self.join(10)
