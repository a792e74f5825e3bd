"""Prometheus metrics of the stream processor, served by the ``/metrics/`` view."""

from prometheus_client import Counter

from stream_processors.webhooks import OUTCOMES

__all__ = ["WEBHOOK_ATTEMPTS"]

WEBHOOK_ATTEMPTS = Counter(
    "asyncarch_processor_webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered, retrying, failed (final) or refused (SSRF)",
    ["outcome"],
)
for _outcome in OUTCOMES:
    WEBHOOK_ATTEMPTS.labels(outcome=_outcome)  # every outcome is exported from the start
