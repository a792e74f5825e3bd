"""Web views that answer task queries from the table.

A query is forwarded (Faust's table routing) to the worker that owns the
task's partition, so any Faust worker answers for any task. The answer merges
the task's webhook delivery (attempts as ``WEBHOOK`` history entries). Each
worker also serves its own Prometheus metrics.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache

from confluent_kafka import Consumer, TopicPartition
from faust.exceptions import SameNode
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream_processors.app import app, kafka_settings, processor_settings, topic_settings
from stream_processors.tables import (
    applied_request_offsets,
    expired_tasks,
    owned_partitions,
    task_partition,
    task_states,
    webhook_deliveries,
)
from stream_processors.webhooks import with_webhook

__all__ = ["get_task", "health", "metrics"]

_routing = {"ready": False, "assigned": False}


@app.on_rebalance_complete.connect
async def _on_rebalance_complete(sender, **kwargs):  # type: ignore[no-untyped-def]
    _routing["assigned"] = True


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
        producer = app.producer._ensure_producer()  # the aiokafka producer
        await producer.partitions_for(task_states.changelog_topic.get_topic_name())
        _routing["ready"] = True


async def _local_task(web, task_id: str):  # type: ignore[no-untyped-def]
    """A task's state from this worker's partitions, waiting (bounded) for requests
    the table has not applied yet; 410 Gone for a task that expired."""
    state = task_states.get(task_id)
    if state is None and task_id not in expired_tasks and await _caught_up_with_requests(task_id):
        state = task_states.get(task_id)
    if state is not None:
        return web.json(with_webhook(state, webhook_deliveries.get(task_id)))
    if (expired_at := expired_tasks.get(task_id)) is not None:
        detail = f"task {task_id} finished and expired at {expired_at} (epoch ms)"
        return web.json({"detail": detail, "expired_at": expired_at}, status=410)
    return web.json({"detail": f"unknown task {task_id}"}, status=404)


async def _caught_up_with_requests(task_id: str) -> bool:
    """Wait until the table applied every request written before this query.

    The API answers 202 only after the broker acknowledged the request, so a
    task id a client holds is below the partition's current high watermark.
    Once the table has applied everything up to that watermark (seen by this
    process, or committed by the app's group before a restart), a missing task
    is truly unknown. Returns whether the table caught up within the bound.
    """
    partition = task_partition(task_id)
    loop = asyncio.get_running_loop()
    high, committed = await loop.run_in_executor(None, _request_progress, partition)
    deadline = time.monotonic() + processor_settings.read_your_writes_timeout_s
    while max(applied_request_offsets[partition] + 1, committed) < high:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@cache
def _progress_reader() -> Consumer:
    # Named after the app's consumer group but never subscribed: it only reads
    # that group's committed offsets and the watermarks.
    return Consumer(kafka_settings.librdkafka(**{"group.id": app.conf.id}))


def _request_progress(partition: int) -> tuple[int, int]:
    """The requests partition's high watermark and the app group's committed offset."""
    tp = TopicPartition(topic_settings.requests, partition)
    reader = _progress_reader()
    _, high = reader.get_watermark_offsets(tp, timeout=5, cached=False)
    [committed] = reader.committed([tp], timeout=5)
    return high, committed.offset
