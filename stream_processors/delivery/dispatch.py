"""Delivers the results of finished tasks, apart from the agent that applies task events.

``schedule_deliveries`` runs inside the task-events agent: when a task is
terminal and names a target (``callback_url``: a webhook; ``deliver_to``: a
sink) that has no delivery yet, it writes a pending one to the
changelog-backed ``webhook-deliveries`` table. A timer on every worker then
starts the due deliveries of the partitions it owns, each attempt a future of
its own (at most ``PROCESSOR_WEBHOOK_CONCURRENCY`` at once), so a slow or
failing receiver delays no task event and no other delivery. After each
attempt the delivery is written back to the table; a restarted worker recovers
the table and resumes what was pending.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import cache
from typing import Any

import httpx

from asyncarch.clock import now_ms
from asyncarch.config import DeliverySettings
from stream_processors.app import app, processor_settings
from stream_processors.delivery.deliveries import (
    PENDING,
    SINK,
    TARGETS,
    WEBHOOK,
    AttemptResult,
    DueDeliveries,
    RetryPolicy,
    needs_delivery,
    new_delivery,
    record_attempt,
    targets_of,
)
from stream_processors.delivery.http import new_http_client, send_webhook
from stream_processors.delivery.payload import webhook_body, webhook_headers
from stream_processors.delivery.sinks import send_to_sink
from stream_processors.delivery.targets import parse_networks
from stream_processors.metrics import SINK_ATTEMPTS, WEBHOOK_ATTEMPTS
from stream_processors.tables import (
    owned_partitions,
    set_outside_stream,
    task_partition,
    task_states,
    webhook_deliveries,
)

__all__ = ["dispatch_deliveries", "schedule_deliveries"]

log = logging.getLogger(__name__)

POLICY = RetryPolicy(
    retry_for_ms=int(processor_settings.webhook_retry_for_s * 1000),
    initial_s=processor_settings.webhook_backoff_initial_s,
    max_s=processor_settings.webhook_backoff_max_s,
)
ALLOWED_NETWORKS = parse_networks(processor_settings.webhook_allowed_networks)
DELIVERY_SETTINGS = DeliverySettings()

# Besides after partitions move, the table is rescanned this often: a scan that
# ran between an assignment and the start of its recovery found nothing yet.
RESCAN_INTERVAL_S = 30.0

# A delivery is named by (task id, target).
DeliveryKey = tuple[str, str]
due = DueDeliveries()
_scanned: dict[str, Any] = {"partitions": None, "at": 0.0}


def schedule_deliveries(state: Mapping[str, Any] | None) -> None:
    """Create the pending deliveries of a finished task, once; call it inside the agent.

    Called for every event, not only the one that finished the task: a replay
    after a crash between the state's write and this one still schedules them.
    """
    needed = [target for target in TARGETS if needs_delivery(state, target)]
    if state is None or not needed:
        return
    task_id = state["task_id"]
    deliveries = targets_of(webhook_deliveries.get(task_id))
    new = {t: new_delivery(state, now_ms(), POLICY, t) for t in needed if t not in deliveries}
    if not new:
        return
    webhook_deliveries[task_id] = {**deliveries, **new}
    for target in new:
        due.schedule((task_id, target), now_ms())


@app.timer(interval=processor_settings.webhook_poll_interval_s)
async def dispatch_deliveries() -> None:
    """Start the due deliveries of this worker's partitions, within the concurrency bound."""
    if app.rebalancing or app.in_recovery:
        return
    owned = frozenset(owned_partitions())
    if owned != _scanned["partitions"] or time.monotonic() - _scanned["at"] > RESCAN_INTERVAL_S:
        due.reset(_pending_in(owned))
        _scanned.update(partitions=owned, at=time.monotonic())
    room = processor_settings.webhook_concurrency - len(due.in_flight)
    for key in due.take(now_ms(), room):
        if task_partition(key[0]) in owned:
            due.in_flight.add(key)
            app.add_future(_attempt(key))


async def _attempt(key: DeliveryKey) -> None:
    try:
        await _deliver(*key)
    except Exception:  # one broken delivery must not stop the others
        log.exception("delivery attempt crashed", extra={"task_id": key[0], "target": key[1]})
    finally:
        due.in_flight.discard(key)


async def _deliver(task_id: str, target: str) -> None:
    delivery = targets_of(webhook_deliveries.get(task_id)).get(target)
    state = task_states.get(task_id)
    if delivery is None or state is None or delivery["status"] != PENDING:
        return
    started = now_ms()
    result = await _SENDERS[target](delivery, state, started)
    if task_partition(task_id) not in owned_partitions() or task_id not in task_states:
        return  # moved to another worker (which retries) or expired meanwhile
    deliveries = targets_of(webhook_deliveries.get(task_id))
    updated = record_attempt(deliveries.get(target) or delivery, result, started, POLICY)
    set_outside_stream(webhook_deliveries, task_id, {**deliveries, target: updated})
    _report(task_id, target, updated)


async def _send_webhook(
    delivery: Mapping[str, Any], state: Mapping[str, Any], started: int
) -> AttemptResult:
    body = webhook_body(state)
    secret = processor_settings.webhook_secret.get_secret_value()
    number = delivery["attempt_count"] + 1
    headers = webhook_headers(secret, body, started // 1000, state, number)
    return await send_webhook(
        _http_client(),
        delivery["url"],
        body,
        headers,
        ALLOWED_NETWORKS,
        processor_settings.webhook_timeout_s,
    )


async def _send_to_sink(
    delivery: Mapping[str, Any], state: Mapping[str, Any], started: int
) -> AttemptResult:
    return await send_to_sink(
        delivery["url"],
        state["task_id"],
        webhook_body(state),  # the result document: the webhook's JSON body
        DELIVERY_SETTINGS,
        ALLOWED_NETWORKS,
        processor_settings.webhook_timeout_s,
    )


_SENDERS: dict[str, Callable[..., Awaitable[AttemptResult]]] = {
    WEBHOOK: _send_webhook,
    SINK: _send_to_sink,
}


def _report(task_id: str, target: str, delivery: Mapping[str, Any]) -> None:
    attempt = delivery["attempts"][-1]
    if target == WEBHOOK:
        WEBHOOK_ATTEMPTS.labels(outcome=attempt["outcome"]).inc()
    else:
        scheme = delivery["url"].partition(":")[0].lower()
        SINK_ATTEMPTS.labels(scheme=scheme, outcome=attempt["outcome"]).inc()
    if delivery["status"] == PENDING:
        due.schedule((task_id, target), delivery["next_attempt_at"])
    log.info(
        f"{target} attempt",
        extra={
            "task_id": task_id,
            "attempt": attempt["attempt"],
            "outcome": attempt["outcome"],
            "status_code": attempt["status_code"],
            "error": (attempt["error"] or {}).get("message"),
        },
    )


def _pending_in(owned: frozenset[int]) -> Iterator[tuple[DeliveryKey, int]]:
    # A snapshot: the agent may add deliveries while the caller works through them.
    for task_id, value in list(webhook_deliveries.data.items()):
        if task_partition(task_id) not in owned:
            continue
        for target, delivery in targets_of(value).items():
            if delivery["status"] == PENDING:
                yield (task_id, target), delivery["next_attempt_at"]


@cache
def _http_client() -> httpx.AsyncClient:
    return new_http_client(processor_settings.webhook_timeout_s)
