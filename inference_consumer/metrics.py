"""Prometheus metrics of a worker, served on ``WORKER_METRICS_PORT`` (0: off)."""

from __future__ import annotations

import json
import logging

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCH_SIZE",
    "INFERENCE_SECONDS",
    "REBALANCES",
    "STAGE_SECONDS",
    "TASKS",
    "TRANSACTION_RETRIES",
    "record_consumer_lag",
]

log = logging.getLogger(__name__)

BATCH_SIZE = Histogram(
    "asyncarch_worker_batch_size",
    "Requests per forward pass",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
INFERENCE_SECONDS = Histogram(
    "asyncarch_worker_inference_seconds", "Wall time of one batch's forward pass"
)
# Where a batch's time goes, so the next regression shows its stage.
STAGE_SECONDS = Histogram(
    "asyncarch_worker_stage_seconds",
    "Wall time of one batch's stage: decode, cancel_check, forward, trim_heap, produce, commit",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TRANSACTION_RETRIES = Counter(
    "asyncarch_worker_transaction_retries_total",
    "Transaction operations retried after a retriable error (broker away), by operation",
    ["operation"],
)
TASKS = Counter("asyncarch_worker_tasks_total", "Tasks finished, by outcome", ["outcome"])
REBALANCES = Counter("asyncarch_worker_rebalances_total", "Partition assignment changes", ["event"])
CONSUMER_LAG = Gauge(
    "asyncarch_worker_consumer_lag", "Messages behind the high watermark", ["partition"]
)


def record_consumer_lag(stats_json: str) -> None:
    """librdkafka ``stats_cb``: export the lag of each assigned partition."""
    try:
        stats = json.loads(stats_json)
    except ValueError:
        log.warning("unreadable librdkafka statistics")
        return
    for topic in stats.get("topics", {}).values():
        for partition, values in topic.get("partitions", {}).items():
            lag = values.get("consumer_lag", -1)
            if partition != "-1" and lag >= 0:
                CONSUMER_LAG.labels(partition=partition).set(lag)
