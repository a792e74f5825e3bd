"""Delivers webhooks of finished tasks, apart from the agent that applies task events.

``schedule_webhook`` runs inside the task-events agent: when a task with a
``callback_url`` is terminal and has no delivery yet, it writes a pending one
to the changelog-backed ``webhook-deliveries`` table. A timer on every worker
then starts the due deliveries of the partitions it owns, each attempt a
future of its own (at most ``PROCESSOR_WEBHOOK_CONCURRENCY`` at once), so a
slow or failing receiver delays no task event and no other webhook. After each
attempt the delivery is written back to the table; a restarted worker recovers
the table and resumes what was pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import httpx

from asyncarch.clock import now_ms
from stream_processors.app import app, processor_settings
from stream_processors.delivery.deliveries import (
    PENDING,
    DueDeliveries,
    RetryPolicy,
    needs_delivery,
    new_delivery,
    record_attempt,
)
from stream_processors.delivery.http import new_http_client, send_webhook
from stream_processors.delivery.payload import webhook_body, webhook_headers
from stream_processors.delivery.targets import parse_networks
from stream_processors.metrics import WEBHOOK_ATTEMPTS
from stream_processors.tables import (
    owned_partitions,
    set_outside_stream,
    task_partition,
    task_states,
    webhook_deliveries,
)

__all__ = ["dispatch_webhooks", "schedule_webhook"]

log = logging.getLogger(__name__)

POLICY = RetryPolicy(
    retry_for_ms=int(processor_settings.webhook_retry_for_s * 1000),
    initial_s=processor_settings.webhook_backoff_initial_s,
    max_s=processor_settings.webhook_backoff_max_s,
)
ALLOWED_NETWORKS = parse_networks(processor_settings.webhook_allowed_networks)

# Besides after partitions move, the table is rescanned this often: a scan that
# ran between an assignment and the start of its recovery found nothing yet.
RESCAN_INTERVAL_S = 30.0

due = DueDeliveries()
_scanned: dict[str, Any] = {"partitions": None, "at": 0.0}


def schedule_webhook(state: Mapping[str, Any] | None) -> None:
    """Create the pending delivery of a finished task, once; call it inside the agent.

    Called for every event, not only the one that finished the task: a replay
    after a crash between the state's write and this one still schedules it.
    """
    if state is None or not needs_delivery(state) or state["task_id"] in webhook_deliveries:
        return
    task_id = state["task_id"]
    webhook_deliveries[task_id] = new_delivery(state, now_ms(), POLICY)
    due.schedule(task_id, now_ms())


@app.timer(interval=processor_settings.webhook_poll_interval_s)
async def dispatch_webhooks() -> None:
    """Start the due deliveries of this worker's partitions, within the concurrency bound."""
    if app.rebalancing or app.in_recovery:
        return
    owned = frozenset(owned_partitions())
    if owned != _scanned["partitions"] or time.monotonic() - _scanned["at"] > RESCAN_INTERVAL_S:
        due.reset(_pending_in(owned))
        _scanned.update(partitions=owned, at=time.monotonic())
    room = processor_settings.webhook_concurrency - len(due.in_flight)
    for task_id in due.take(now_ms(), room):
        if task_partition(task_id) in owned:
            due.in_flight.add(task_id)
            app.add_future(_attempt(task_id))


async def _attempt(task_id: str) -> None:
    try:
        await _deliver(task_id)
    except Exception:  # one broken delivery must not stop the others
        log.exception("webhook attempt crashed", extra={"task_id": task_id})
    finally:
        due.in_flight.discard(task_id)


async def _deliver(task_id: str) -> None:
    delivery, state = webhook_deliveries.get(task_id), task_states.get(task_id)
    if delivery is None or state is None or delivery["status"] != PENDING:
        return
    started = now_ms()
    number = delivery["attempt_count"] + 1
    body = webhook_body(state)
    secret = processor_settings.webhook_secret.get_secret_value()
    headers = webhook_headers(secret, body, started // 1000, state, number)
    result = await send_webhook(
        _http_client(),
        delivery["url"],
        body,
        headers,
        ALLOWED_NETWORKS,
        processor_settings.webhook_timeout_s,
    )
    if task_partition(task_id) not in owned_partitions() or task_id not in task_states:
        return  # moved to another worker (which retries) or expired meanwhile
    updated = record_attempt(webhook_deliveries.get(task_id) or delivery, result, started, POLICY)
    set_outside_stream(webhook_deliveries, task_id, updated)
    _report(task_id, updated)


def _report(task_id: str, delivery: Mapping[str, Any]) -> None:
    attempt = delivery["attempts"][-1]
    WEBHOOK_ATTEMPTS.labels(outcome=attempt["outcome"]).inc()
    if delivery["status"] == PENDING:
        due.schedule(task_id, delivery["next_attempt_at"])
    log.info(
        "webhook attempt",
        extra={
            "task_id": task_id,
            "attempt": attempt["attempt"],
            "outcome": attempt["outcome"],
            "status_code": attempt["status_code"],
            "error": (attempt["error"] or {}).get("message"),
        },
    )


def _pending_in(owned: frozenset[int]) -> Iterator[tuple[str, int]]:
    # A snapshot: the agent may add deliveries while the caller works through them.
    for task_id, delivery in list(webhook_deliveries.data.items()):
        if delivery and delivery["status"] == PENDING and task_partition(task_id) in owned:
            yield task_id, delivery["next_attempt_at"]


@cache
def _http_client() -> httpx.AsyncClient:
    return new_http_client(processor_settings.webhook_timeout_s)
