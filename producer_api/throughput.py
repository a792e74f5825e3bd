"""Tasks by state, completions per second and latency, from the processor's metrics.

The Faust worker already exports what the monitor needs on its ``/metrics/``
view: tasks by state (a snapshot of its table, refreshed every 15 s), state
changes applied (a counter per state) and the time from acceptance to a
terminal state (a histogram). The monitor samples that text each time it
refreshes and keeps a few minutes of samples: rates and latencies are the
differences between samples. With several Faust workers, the figures are
those of the worker that ``API_PROCESSOR_URL`` reaches.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from schemas.states import TERMINAL_STATES

__all__ = ["ProcessorSample", "ThroughputHistory", "parse_sample"]

TASKS = "asyncarch_processor_tasks"
CHANGES = "asyncarch_processor_state_changes_total"
LATENCY = "asyncarch_processor_task_latency_seconds"
SERIES_STEP_S = 10.0


@dataclass(frozen=True)
class ProcessorSample:
    """One reading of the processor's metrics at ``t`` (epoch seconds)."""

    t: float
    tasks_by_state: dict[str, int]
    completed: float
    latency_sum: float
    latency_count: float
    latency_buckets: dict[float, float] = field(default_factory=dict)


def parse_sample(text: str, t: float) -> ProcessorSample:
    """The monitor's figures in a Prometheus text exposition."""
    tasks: dict[str, int] = {}
    completed = latency_sum = latency_count = 0.0
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            state = sample.labels.get("state", "")
            if sample.name == TASKS:
                tasks[state] = int(sample.value)
            elif sample.name == CHANGES and state in TERMINAL_STATES:
                completed += sample.value
            elif sample.name == f"{LATENCY}_sum":
                latency_sum += sample.value
            elif sample.name == f"{LATENCY}_count":
                latency_count += sample.value
            elif sample.name == f"{LATENCY}_bucket":
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    return ProcessorSample(t, tasks, completed, latency_sum, latency_count, buckets)


class ThroughputHistory:
    """The last ``window_s`` seconds of samples, and what they say."""

    def __init__(self, window_s: float = 300.0) -> None:
        self.window_s = window_s
        self._samples: deque[ProcessorSample] = deque()

    def add(self, sample: ProcessorSample) -> None:
        """Keep ``sample``; a processor restart (counters went down) starts over."""
        if self._samples and sample.completed < self._samples[-1].completed:
            self._samples.clear()
        self._samples.append(sample)
        while self._samples[0].t < sample.t - self.window_s:
            self._samples.popleft()

    def summary(self) -> dict[str, Any]:
        """Tasks by state, completions per second (last 10 s and 60 s), latency over the
        last 60 s, and a series of ``SERIES_STEP_S`` steps over the window."""
        if not self._samples:
            return {}
        latest = self._samples[-1]
        minute = self._since(latest.t - 60)
        return {
            "tasks_by_state": latest.tasks_by_state,
            "completed_total": int(latest.completed),
            "completed_per_s": {
                "10s": _rate(self._since(latest.t - 10), latest),
                "60s": _rate(minute, latest),
            },
            "latency_s": _latency(minute, latest),
            "window_s": round(latest.t - self._samples[0].t, 1),
            "series": self._series(),
        }

    def _since(self, t: float) -> ProcessorSample:
        """The oldest sample taken at or after ``t`` (the newest if none is older)."""
        return next((s for s in self._samples if s.t >= t), self._samples[-1])

    def _series(self) -> list[dict[str, Any]]:
        points, previous = [], self._samples[0]
        for sample in self._samples:
            if sample.t - previous.t >= SERIES_STEP_S or sample is self._samples[-1]:
                if sample.t > previous.t:
                    points.append(
                        {
                            "t": round(sample.t, 3),
                            "completed_per_s": _rate(previous, sample),
                            "mean_latency_s": _latency(previous, sample)["mean"],
                        }
                    )
                previous = sample
        return points


def _rate(old: ProcessorSample, new: ProcessorSample) -> float | None:
    """Completions per second between two samples; None when they are the same."""
    if new.t <= old.t:
        return None
    return round((new.completed - old.completed) / (new.t - old.t), 3)


def _latency(old: ProcessorSample, new: ProcessorSample) -> dict[str, float | None]:
    """Mean, median and 95th percentile of the tasks finished between two samples."""
    count = new.latency_count - old.latency_count
    if count <= 0:
        return {"mean": None, "p50": None, "p95": None}
    buckets = {
        le: new.latency_buckets[le] - old.latency_buckets.get(le, 0.0) for le in new.latency_buckets
    }
    return {
        "mean": round((new.latency_sum - old.latency_sum) / count, 4),
        "p50": _quantile(0.5, buckets),
        "p95": _quantile(0.95, buckets),
    }


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile``: linear within the bucket that holds ``q``."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank, lower, below = q * buckets[bounds[-1]], 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if math.isinf(bound):
                return lower
            inside = buckets[bound] - below
            fraction = (rank - below) / inside if inside > 0 else 1.0
            return round(lower + (bound - lower) * fraction, 4)
        lower, below = bound, buckets[bound]
    return lower
