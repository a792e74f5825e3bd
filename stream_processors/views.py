"""Web views that answer task queries from the table.

A query is forwarded (Faust's table routing) to the worker that owns the
task's partition, so any Faust worker answers for any task. The answer merges
the task's webhook delivery (attempts as ``WEBHOOK`` history entries). Each
worker also serves its own Prometheus metrics.
"""

from __future__ import annotations

from faust.exceptions import SameNode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_processors.app import app, topic_settings
from stream_processors.catch_up import caught_up, forget_warm_partitions, warm_up
from stream_processors.tables import (
    expired_tasks,
    owned_partitions,
    task_partition,
    task_states,
    webhook_deliveries,
)
from stream_processors.webhooks import with_webhook

__all__ = ["get_task", "health", "metrics"]

_routing = {"ready": False, "assigned": False}


@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_rebalance_complete(sender, **kwargs):  # type: ignore[no-untyped-def]
    _routing["assigned"] = True
    forget_warm_partitions()


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
    """A task's state, answered by the worker that owns the task's partition."""
    await _load_changelog_metadata()
    try:
        return await app.router.route_req(task_states.name, task_id, web, request)
    except SameNode:
        return await _local_task(web, task_id)


async def _load_changelog_metadata() -> None:
    """Routing maps a key to its partition from producer metadata, which aiokafka
    only has for topics it has written to; fetch it once before the first query."""
    if not _routing["ready"]:
        producer = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka
        await producer.partitions_for(task_states.changelog_topic.get_topic_name())
        _routing["ready"] = True


async def _local_task(web, task_id: str):  # type: ignore[no-untyped-def]
    """A task's state from this worker's partitions, waiting (bounded) for events
    the table has not applied yet; 410 Gone for a task that expired."""
    partition = task_partition(task_id)
    await warm_up(partition)
    state = task_states.get(task_id)
    if (
        state is None
        and task_id not in expired_tasks
        and await caught_up(partition, (topic_settings.requests,))
    ):
        state = task_states.get(task_id)
    if state is not None:
        return web.json(with_webhook(state, webhook_deliveries.get(task_id)))
    if (expired_at := expired_tasks.get(task_id)) is not None:
        detail = f"task {task_id} finished and expired at {expired_at} (epoch ms)"
        return web.json({"detail": detail, "expired_at": expired_at}, status=410)
    return web.json({"detail": f"unknown task {task_id}"}, status=404)
