"""The live monitor's data: Kafka's view of the pipeline plus the processor's figures.

One snapshot serves every open monitor page for ``ttl_s``: concurrent requests
wait for the same refresh, and a failed refresh is remembered for as long, so
many pages never multiply the queries to the broker. Kafka not answering is a
503 for the whole snapshot; a processor not answering only empties its part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException

from producer_api.broker_connectivity import BrokerConnectivity
from producer_api.cluster_probe import ClusterProbe
from producer_api.exceptions import BrokersDown, BrokerUnavailable, ProcessorUnavailable
from producer_api.task_state import TaskStateClient
from producer_api.throughput import ThroughputHistory, parse_sample

__all__ = ["PipelineMonitor"]


class PipelineMonitor:
    """Builds (and caches for ``ttl_s``) what ``GET /monitor/data`` answers."""

    def __init__(
        self,
        probe: ClusterProbe,
        task_state: TaskStateClient,
        connectivity: BrokerConnectivity,
        ttl_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.probe, self.ttl_s = probe, ttl_s
        self._task_state, self._connectivity, self._clock = task_state, connectivity, clock
        self._history = ThroughputHistory()
        self._lock = asyncio.Lock()
        self._cached: dict[str, Any] | BrokerUnavailable | None = None
        self._cached_at = float("-inf")

    async def snapshot(self) -> dict[str, Any]:
        """The current snapshot; raises BrokerUnavailable (503) when Kafka does not answer."""
        async with self._lock:
            if self._cached is None or self._clock() - self._cached_at >= self.ttl_s:
                try:
                    self._cached = await self._refresh()
                except BrokerUnavailable as exc:
                    self._cached = exc
                self._cached_at = self._clock()
            cached = self._cached
        if isinstance(cached, BrokerUnavailable):
            raise cached
        return cached

    def close(self) -> None:
        """Close the Kafka clients."""
        self.probe.close()

    async def _refresh(self) -> dict[str, Any]:
        if self._connectivity.down:
            raise BrokersDown(
                f"no Kafka broker reachable for {self._connectivity.down_for_s():.1f}s"
            )
        try:
            cluster, processor = await asyncio.gather(
                asyncio.to_thread(self.probe.snapshot), self._processor()
            )
        except (KafkaException, TimeoutError) as exc:
            raise BrokerUnavailable(f"Kafka did not answer the monitor: {exc}") from exc
        return {"generated_at": int(time.time() * 1000), **cluster, "processor": processor}

    async def _processor(self) -> dict[str, Any]:
        """Tasks by state, throughput and latency; ``error`` when the processor is away."""
        try:
            text = await self._task_state.metrics_text()
        except ProcessorUnavailable as exc:
            return {"error": str(exc)}
        self._history.add(parse_sample(text, time.time()))
        return self._history.summary()
