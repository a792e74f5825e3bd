"""Web views that answer task queries from the table.

``table_route`` forwards a query to the Faust worker that owns the task's
partition, so any worker answers for any task.
"""

from __future__ import annotations

import asyncio
import time
from functools import cache

from aiokafka.partitioner import murmur2
from confluent_kafka import Consumer, TopicPartition

from stream_processors.app import app, kafka_settings, processor_settings, topic_settings
from stream_processors.tables import applied_request_offsets, task_states

__all__ = ["get_task", "health"]


@app.page("/health/")
async def health(web, request):  # type: ignore[no-untyped-def]
    """Whether this worker is up and not rebalancing."""
    return web.json({"ok": True, "rebalancing": bool(app.rebalancing)})


@app.page("/tasks/{task_id}/")
@app.table_route(table=task_states, match_info="task_id")
async def get_task(web, request, task_id: str):  # type: ignore[no-untyped-def]
    """A task's state; waits (bounded) for requests the table has not applied yet."""
    state = task_states.get(task_id)
    if state is None and await _caught_up_with_requests(task_id):
        state = task_states.get(task_id)
    if state is None:
        return web.json({"detail": f"unknown task {task_id}"}, status=404)
    return web.json(state)


async def _caught_up_with_requests(task_id: str) -> bool:
    """Wait until the table applied every request written before this query.

    The API answers 202 only after the broker acknowledged the request, so a
    task id a client holds is below the partition's current high watermark.
    Once the table has applied everything up to that watermark, a missing task
    is truly unknown. Returns whether the table caught up within the bound.
    """
    partition = (murmur2(task_id.encode()) & 0x7FFFFFFF) % topic_settings.partitions
    loop = asyncio.get_running_loop()
    _, high = await loop.run_in_executor(None, _watermarks, partition)
    deadline = time.monotonic() + processor_settings.read_your_writes_timeout_s
    while applied_request_offsets[partition] < high - 1:
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@cache
def _watermark_reader() -> Consumer:
    return Consumer(kafka_settings.librdkafka(**{"group.id": f"{app.conf.id}-watermarks"}))


def _watermarks(partition: int) -> tuple[int, int]:
    tp = TopicPartition(topic_settings.requests, partition)
    return _watermark_reader().get_watermark_offsets(tp, timeout=5, cached=False)
