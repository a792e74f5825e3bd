"""Backpressure: a per-caller rate limit, and a bound on tasks waiting for workers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import KafkaException

from asyncarch.config import KafkaSettings
from asyncarch.group_probe import GroupProbe
from producer_api.exceptions import Overloaded, TooManyRequests

__all__ = ["RateLimiter", "WaitingTasksMonitor"]

log = logging.getLogger(__name__)


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """A token bucket per caller: ``rate`` requests a second, bursts up to ``burst``."""

    rate: float
    burst: int
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, caller: str, now: float | None = None) -> None:
        """Take a token for ``caller``; raises TooManyRequests with the wait when empty."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.setdefault(caller, _Bucket(float(self.burst), now))
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
            if bucket.tokens < 1:
                wait = (1 - bucket.tokens) / self.rate
                raise TooManyRequests(f"rate limit of {self.rate:g}/s exceeded", wait)
            bucket.tokens -= 1


class WaitingTasksMonitor:
    """Measures, in the background, how many requests the workers' group has not consumed.

    When that lag passes ``limit``, ``check`` refuses new tasks with 503 so they
    do not pile up without bound; clients retry after ``Retry-After``.
    """

    def __init__(
        self, kafka: KafkaSettings, topic: str, group: str, limit: int, interval_s: float
    ) -> None:
        self.topic, self.limit, self.interval_s = topic, limit, interval_s
        self.waiting = 0
        self._probe = GroupProbe(kafka, group)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-monitor", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise Overloaded when too many tasks are waiting."""
        if self.waiting > self.limit:
            raise Overloaded(f"{self.waiting} tasks are waiting for workers (limit {self.limit})")

    def close(self) -> None:
        """Stop measuring."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._probe.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.waiting = self.measure()
            except (KafkaException, RuntimeError, KeyError) as exc:
                log.warning("could not measure waiting tasks", extra={"error": repr(exc)})

    def measure(self) -> int:
        """Requests written but not yet committed by the workers' group."""
        progress = self._probe.progress(self._probe.partitions(self.topic))
        return sum(partition.lag() for partition in progress)
