"""Prometheus metrics of the API."""

from prometheus_client import Counter

__all__ = ["TASKS_REJECTED", "TASKS_SUBMITTED"]

TASKS_SUBMITTED = Counter(
    "asyncarch_api_tasks_submitted_total", "Tasks accepted (acknowledged by Kafka)", ["kind"]
)
TASKS_REJECTED = Counter(
    "asyncarch_api_requests_rejected_total", "Requests answered with an error", ["status"]
)
