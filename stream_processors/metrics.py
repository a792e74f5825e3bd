"""Prometheus metrics of the stream processor, served by the ``/metrics/`` view."""

from prometheus_client import Counter, Gauge, Histogram

from asyncarch.sink_targets import SCHEMES
from stream_processors.delivery.deliveries import OUTCOMES

__all__ = [
    "CATCH_UP_CHECKS",
    "CATCH_UP_PROBES",
    "RECOVERY_SECONDS",
    "SINK_ATTEMPTS",
    "STATE_CHANGES",
    "TABLE_TASKS",
    "TASK_LATENCY_SECONDS",
    "WEBHOOK_ATTEMPTS",
]

WEBHOOK_ATTEMPTS = Counter(
    "asyncarch_processor_webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered, retrying, failed (final) or refused (SSRF)",
    ["outcome"],
)
for _outcome in OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(outcome=_outcome)  # every outcome is exported from the start

SINK_ATTEMPTS = Counter(
    "asyncarch_processor_sink_attempts_total",
    "Result sink (deliver_to) attempts by scheme (s3, ftp) and outcome, as for webhooks",
    ["scheme", "outcome"],
)
for _scheme in SCHEMES:
    for _outcome in OUTCOMES:
        SINK_ATTEMPTS.labels(scheme=_scheme, outcome=_outcome)

STATE_CHANGES = Counter(
    "asyncarch_processor_state_changes_total", "State changes applied to the table", ["state"]
)
TABLE_TASKS = Gauge(
    "asyncarch_processor_tasks", "Tasks in this worker's table partitions, by state", ["state"]
)
TASK_LATENCY_SECONDS = Histogram(
    "asyncarch_processor_task_latency_seconds",
    "From request accepted to terminal state, by terminal state",
    ["state"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
RECOVERY_SECONDS = Gauge(
    "asyncarch_processor_recovery_seconds",
    "Last rebalance: from partitions assigned to table recovered and ready",
)
CATCH_UP_CHECKS = Counter(
    "asyncarch_processor_catch_up_checks_total",
    "Queries that asked whether the table has applied a partition's end (first sight of a "
    "task, warm-up after an assignment)",
)
CATCH_UP_PROBES = Counter(
    "asyncarch_processor_catch_up_probes_total",
    "Broker round trips (committed offsets and end offsets) made for those checks; queries "
    "of a partition waiting at the same time share one",
)
