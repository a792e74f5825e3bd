"""The monitor's throughput and latency, from samples of the processor's metrics."""

from __future__ import annotations

import pytest

from producer_api.throughput import ThroughputHistory, parse_sample

LATENCY_BOUNDS = ("0.5", "1.0", "2.5", "+Inf")


def exposition(
    success: int, pending: int, under_half_s: int, under_1_s: int, total_s: float
) -> str:
    """The processor's metric lines, as its /metrics/ view writes them."""
    buckets = dict(zip(LATENCY_BOUNDS, (under_half_s, under_1_s, success, success), strict=True))
    lines = [
        "# TYPE asyncarch_processor_tasks gauge",
        f'asyncarch_processor_tasks{{state="PENDING"}} {pending}',
        f'asyncarch_processor_tasks{{state="SUCCESS"}} {success}',
        "# TYPE asyncarch_processor_state_changes counter",
        f'asyncarch_processor_state_changes_total{{state="RUNNING"}} {success + pending}',
        f'asyncarch_processor_state_changes_total{{state="SUCCESS"}} {success}',
        "# TYPE asyncarch_processor_task_latency_seconds histogram",
        *(
            f'asyncarch_processor_task_latency_seconds_bucket{{le="{le}",state="SUCCESS"}} {n}'
            for le, n in buckets.items()
        ),
        f'asyncarch_processor_task_latency_seconds_count{{state="SUCCESS"}} {success}',
        f'asyncarch_processor_task_latency_seconds_sum{{state="SUCCESS"}} {total_s}',
    ]
    return "\n".join(lines) + "\n"


def test_rates_and_latency_are_differences_between_samples() -> None:
    history = ThroughputHistory()
    history.add(parse_sample(exposition(10, 5, 10, 10, 3.0), t=1000.0))
    history.add(parse_sample(exposition(30, 1, 20, 30, 13.0), t=1020.0))
    summary = history.summary()
    assert summary["tasks_by_state"] == {"PENDING": 1, "SUCCESS": 30}
    assert summary["completed_total"] == 30
    assert summary["completed_per_s"]["60s"] == pytest.approx(1.0)
    latency = summary["latency_s"]
    assert latency["mean"] == pytest.approx(0.5)  # 10 s over the 20 tasks finished in between
    assert latency["p50"] == pytest.approx(0.5)  # 10 of the 20 took under 0.5 s
    assert 0.5 < latency["p95"] <= 1.0
    assert [p["completed_per_s"] for p in summary["series"]] == [pytest.approx(1.0)]


def test_a_processor_restart_starts_the_history_over() -> None:
    history = ThroughputHistory()
    history.add(parse_sample(exposition(50, 0, 50, 50, 5.0), t=1000.0))
    history.add(parse_sample(exposition(2, 0, 2, 2, 0.2), t=1010.0))
    summary = history.summary()
    assert summary["completed_total"] == 2
    assert summary["completed_per_s"]["60s"] is None
    assert summary["latency_s"] == {"mean": None, "p50": None, "p95": None}


def test_samples_older_than_the_window_are_dropped() -> None:
    history = ThroughputHistory(window_s=60)
    for t in range(0, 200, 10):
        history.add(parse_sample(exposition(t, 0, t, t, 0.0), t=float(t)))
    assert history.summary()["window_s"] == 60
