"""Whether this worker's table has applied what was in Kafka when a query came.

Two questions use it:

- *Read-your-writes.* The API answers 202 only after the broker acknowledged a
  request, so a task id a client holds is below the requests partition's high
  watermark. Once the table has applied everything below it, a missing task
  is truly unknown. The API that wrote the request passes its offset with the
  task's first queries (``written=``): then the table is known to have the task
  once the agent has applied that offset, and the broker is not asked at all.
- *Warm-up after an assignment.* A worker that restarts (or takes a partition
  over) restores the table from the changelog, then replays the source topics
  from the group's committed offsets. Until that replay reaches the
  partitions' ends, the table can be behind what clients already saw (a
  SUCCESS whose changelog write died with the old worker): the first query of
  a partition waits for the replay, so answers never move backwards.

A source offset counts as applied when the agent processed it in this process,
or when the app's group committed past it (Faust flushes the changelog before
committing); ``asyncarch.group_probe`` reads the group's progress (and allows
for the commit marker that ends a transactional topic). Queries of the same
partition that wait at the same time share one probe (``probe_rounds``).

When the answer cannot be known in time (partitions moving, the table still
recovering from its changelog, the replay not done within the bound, or the
broker not answering) a query gets 503 Service Unavailable, never an answer
from a table that may be behind: the API retries it within its own timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from functools import cache

from confluent_kafka import KafkaException
from faust.web.exceptions import ServiceUnavailable

from asyncarch.group_probe import GroupProbe, PartitionProgress
from stream_processors.app import app, kafka_settings, processor_settings, topic_settings
from stream_processors.metrics import CATCH_UP_CHECKS, CATCH_UP_PROBES
from stream_processors.probe_rounds import ProbeRounds
from stream_processors.waiters import wait_for_change

__all__ = ["applied_offsets", "caught_up", "forget_warm_partitions", "request_applied", "warm_up"]

# Per request to the broker; during an outage a query fails fast with 503.
KAFKA_QUERY_TIMEOUT_S = 2.0
# Highest source offset the agent applied, per (topic, partition).
applied_offsets: dict[tuple[str, int], int] = defaultdict(lambda: -1)
_warm: set[int] = set()


async def caught_up(partition: int, topics: tuple[str, ...]) -> bool:
    """Wait (bounded) until ``topics``' ``partition`` is applied up to its current end.

    Returns True; raises ServiceUnavailable (503) when that cannot be known
    within ``read_your_writes_timeout_s``: answering from the table then could
    report a task the client holds as unknown.
    """
    _refuse_while_moving()
    deadline = time.monotonic() + processor_settings.read_your_writes_timeout_s
    CATCH_UP_CHECKS.inc()
    try:
        progress = await _rounds.get((partition, topics))
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka does not answer: {exc}") from exc
    while any(_behind(p) for p in progress):
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"partition {partition} is still catching up")
        await asyncio.sleep(0.02)
        _refuse_while_moving()
    return True


async def request_applied(task_id: str, partition: int, offset: int) -> None:
    """Wait (bounded) until the agent has applied the request written at ``offset``.

    The API that wrote a task's request knows its offset and passes it with
    the task's first queries: once the agent is past it, the table has the task
    (or it expired), and no broker probe is needed. The task's own write wakes
    the wait. Raises ServiceUnavailable (503) when that takes longer than
    ``read_your_writes_timeout_s``.
    """
    key = (topic_settings.requests, partition)
    deadline = time.monotonic() + processor_settings.read_your_writes_timeout_s
    while applied_offsets[key] < offset:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServiceUnavailable(f"partition {partition} is still catching up")
        # Short slices: a request applied without a write (its task expired) wakes no one.
        if await wait_for_change(task_id, min(remaining, 0.1)):
            return
        _refuse_while_moving()


async def warm_up(partition: int) -> None:
    """Once per assignment: wait until every source topic of the partition is replayed.

    Raises ServiceUnavailable (503) while partitions move or the table recovers,
    and while the replay has not caught up within the bound.
    """
    _refuse_while_moving()
    if partition not in _warm and await caught_up(partition, source_topics()):
        _warm.add(partition)


def _refuse_while_moving() -> None:
    """A rebalance or a table recovery is under way: the table may be behind."""
    if app.rebalancing or app.in_recovery:
        raise ServiceUnavailable("partitions are moving or the table is recovering")


def forget_warm_partitions() -> None:
    """After a rebalance, every partition warms up again."""
    _warm.clear()


def source_topics() -> tuple[str, ...]:
    """The topics the task-events agent folds into the table."""
    return (
        topic_settings.requests,
        topic_settings.status,
        topic_settings.results,
        topic_settings.cancellations,
    )


def _behind(progress: PartitionProgress) -> bool:
    """Whether the table lacks offsets below the partition's end (as of the probe)."""
    applied = applied_offsets[(progress.topic, progress.partition)]
    return progress.lag(topic_settings.transactional, read_to=applied + 1) > 0


@cache
def _probe() -> GroupProbe:
    return GroupProbe(kafka_settings, app.conf.id, KAFKA_QUERY_TIMEOUT_S)


def _progress(partition: int, topics: tuple[str, ...]) -> list[PartitionProgress]:
    """The app group's progress on ``partition`` of each of ``topics``."""
    return _probe().progress((topic, partition) for topic in topics)


async def _probe_in_thread(key: tuple[int, tuple[str, ...]]) -> list[PartitionProgress]:
    CATCH_UP_PROBES.inc()
    return await asyncio.get_running_loop().run_in_executor(None, _progress, *key)


# Concurrent queries of a partition share a probe (one broker round trip per
# round instead of one per query: a burst's first GETs all land here).
_rounds: ProbeRounds[tuple[int, tuple[str, ...]], list[PartitionProgress]] = ProbeRounds(
    _probe_in_thread
)
