"""Web views that answer task queries from the table.

A query is forwarded (Faust's table routing) to the worker that owns the
task's partition, so any Faust worker answers for any task; the forwarded
request keeps its query string. The answer merges the task's webhook delivery
(attempts as ``WEBHOOK`` history entries). Each worker also serves its own
Prometheus metrics.

Read-your-writes: ``written=<offset>`` (set by the API that wrote the task's
request) lets a query of a task the table has not applied yet wait for that
offset instead of asking the broker how far the table is.

Long-poll: ``/tasks/{id}/?wait=S`` answers as soon as the task is terminal, or
after ``S`` seconds (at most ``MAX_WAIT_S``) with its state then. With
``since=<updated_at>`` it also answers as soon as the task's ``updated_at``
differs from the one the caller already has (any change: a stream of states).
A waiting query holds no table lock: the agent wakes it after each write.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import ClientSession, TCPConnector
from faust.exceptions import SameNode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_processors.app import app, topic_settings
from stream_processors.catch_up import (
    caught_up,
    forget_warm_partitions,
    request_applied,
    warm_up,
)
from stream_processors.delivery.deliveries import TARGETS, needs_delivery, with_deliveries
from stream_processors.state_machine import TERMINAL_STATES
from stream_processors.tables import (
    expired_tasks,
    owned_partitions,
    task_partition,
    task_states,
    webhook_deliveries,
)
from stream_processors.waiters import wait_for_change, wake_all

__all__ = ["MAX_WAIT_S", "get_task", "health", "metrics"]

MAX_WAIT_S = 60.0
# How long a query for a task not in the table waits for the agent to write it
# before it asks the broker how far the table is (an unknown id's 404 waits this).
FIRST_SIGHT_WAIT_S = 0.05
_routing = {"ready": False, "assigned": False, "uncapped": False}


@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_rebalance_complete(sender, **kwargs):  # type: ignore[no-untyped-def]
    _routing["assigned"] = True
    forget_warm_partitions()
    # Waiting queries may no longer be on the task's owner: answer them now,
    # their callers ask again and get routed to the new owner.
    wake_all()


@app.page("/health/")
async def health(web, request):  # type: ignore[no-untyped-def]
    """Ready once partitions are assigned and recovered, and no rebalance is under way."""
    ready = _routing["assigned"] and not app.rebalancing and not app.in_recovery
    body = {
        "ok": True,
        "ready": ready,
        "rebalancing": bool(app.rebalancing),
        "partitions": sorted(owned_partitions()) if ready else [],
    }
    return web.json(body, status=200 if ready else 503)


@app.page("/metrics/")
async def metrics(web, request):  # type: ignore[no-untyped-def]
    """This worker's Prometheus metrics (webhook outcomes)."""
    return web.bytes(generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/tasks/{task_id}/")
async def get_task(web, request, task_id: str):  # type: ignore[no-untyped-def]
    """A task's state, answered by the worker that owns the task's partition;
    ``?wait=S[&since=<updated_at>]`` long-polls (see the module docstring)."""
    try:
        wait_s, since = _long_poll_params(request.query)
        written = _offset_param(request.query, "written")
    except ValueError as exc:
        return web.json({"detail": str(exc)}, status=400)
    await _load_changelog_metadata()
    try:
        return await app.router.route_req(task_states.name, task_id, web, request)
    except SameNode:
        return await _local_task(web, task_id, wait_s, since, written)


def _long_poll_params(query: Any) -> tuple[float, int | None]:
    """``wait`` (seconds, 0 when absent) and ``since`` (epoch ms, or None)."""
    wait_s = float(query.get("wait") or 0)
    if not 0 <= wait_s <= MAX_WAIT_S:
        raise ValueError(f"wait must be between 0 and {MAX_WAIT_S:g} seconds")
    since = query.get("since")
    return wait_s, (int(since) if since not in (None, "") else None)


def _offset_param(query: Any, name: str) -> int | None:
    """A non-negative Kafka offset from the query string, or None when absent."""
    value = query.get(name)
    if value in (None, ""):
        return None
    offset = int(value)
    if offset < 0:
        raise ValueError(f"{name} must be an offset (>= 0)")
    return offset


async def _load_changelog_metadata() -> None:
    """Routing maps a key to its partition from producer metadata, which aiokafka
    only has for topics it has written to; fetch it once before the first query,
    and give forwarded queries a connection pool without a cap."""
    if not _routing["uncapped"]:
        # A forwarded long-poll holds a connection to the owner for its wait;
        # aiohttp's default pool of 100 would queue the next pollers behind them.
        app.http_client = ClientSession(connector=TCPConnector(limit=0))
        _routing["uncapped"] = True
    if not _routing["ready"]:
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka
        await producer.partitions_for(task_states.changelog_topic.get_topic_name())
        _routing["ready"] = True


async def _local_task(  # type: ignore[no-untyped-def]
    web, task_id: str, wait_s: float, since: int | None, written: int | None = None
):
    """A task's state from this worker's partitions, waiting (bounded) for events
    the table has not applied yet; 410 Gone for a task that expired."""
    partition = task_partition(task_id)
    await warm_up(partition)
    state = task_states.get(task_id)
    if state is None and task_id not in expired_tasks:
        state = await _first_sight(task_id, partition, written)
    if state is not None:
        state = await _await_change(task_id, state, wait_s, since)
        return web.json(with_deliveries(state, _deliveries(state)))
    if (expired_at := expired_tasks.get(task_id)) is not None:
        detail = f"task {task_id} finished and expired at {expired_at} (epoch ms)"
        return web.json({"detail": detail, "expired_at": expired_at}, status=410)
    return web.json({"detail": f"unknown task {task_id}"}, status=404)


def _deliveries(state: dict[str, Any]) -> Any:
    """The task's deliveries, looked up only for a task that has some (terminal, with
    a target): most have none, and each lookup is a RocksDB read."""
    if any(needs_delivery(state, target) for target in TARGETS):
        return webhook_deliveries.get(state["task_id"])
    return None


async def _first_sight(task_id: str, partition: int, written: int | None) -> dict[str, Any] | None:
    """A task the table does not have yet: most often its request is being applied
    right now (a client asking at once after its 202), and the agent's write
    wakes us. If it does not come soon: with the request's offset (``written``),
    wait until the agent is past it; without, ask the broker whether the table
    has applied every request (read-your-writes), which costs two round trips."""
    if change := await wait_for_change(task_id, FIRST_SIGHT_WAIT_S):
        return change.state or task_states.get(task_id)
    if written is not None:
        await request_applied(task_id, partition, written)
        return task_states.get(task_id)
    if await caught_up(partition, (topic_settings.requests,)):
        return task_states.get(task_id)
    return None


async def _await_change(
    task_id: str, state: dict[str, Any], wait_s: float, since: int | None
) -> dict[str, Any]:
    """The task's state once it is terminal, has changed from ``since``, or
    ``wait_s`` has passed; the agent's writes wake the wait.

    With ``since``, any write during the wait answers, even one whose event has
    the same millisecond as the last (RETRYING, then RUNNING at once).
    """
    deadline = time.monotonic() + wait_s
    while state["state"] not in TERMINAL_STATES and (since is None or state["updated_at"] == since):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not (change := await wait_for_change(task_id, remaining)):
            break
        state = change.state or task_states.get(task_id) or state
        if since is not None:
            break
    return state
