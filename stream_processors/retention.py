"""When a finished task leaves the table, and when its expired id is forgotten.

Pure decisions, no Faust: the expiry timer (``agents/expiry.py``) feeds them
the table's contents and acts on the answer.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream_processors.state_machine import TERMINAL_STATES

__all__ = [
    "RetentionPolicy",
    "expired_ids_to_forget",
    "finished_to_expire",
    "is_expired",
    "tasks_to_expire",
]


@dataclass(frozen=True)
class RetentionPolicy:
    """How long finished tasks and the ids of expired ones are kept, in milliseconds."""

    task_ttl_ms: int
    expired_ids_retention_ms: int
    expired_ids_max: int
    batch_max: int


def is_expired(state: Mapping[str, Any] | None, now_ms: int, ttl_ms: int) -> bool:
    """Whether a task finished at least ``ttl_ms`` before ``now_ms``.

    A terminal state is final, so ``updated_at`` of a terminal task is when it
    finished. Tasks still under way never expire, however old.
    """
    if not state or state.get("state") not in TERMINAL_STATES:
        return False
    finished_at = state.get("updated_at")
    return finished_at is not None and now_ms - finished_at >= ttl_ms


def tasks_to_expire(
    states: Iterable[tuple[str, Mapping[str, Any] | None]], now_ms: int, policy: RetentionPolicy
) -> list[str]:
    """Ids of the expired tasks among ``states``, at most ``policy.batch_max`` of them."""
    due: list[str] = []
    for task_id, state in states:
        if is_expired(state, now_ms, policy.task_ttl_ms):
            due.append(task_id)
            if len(due) >= policy.batch_max:
                break
    return due


def finished_to_expire(
    finished: Mapping[str, int], now_ms: int, policy: RetentionPolicy
) -> list[str]:
    """Ids of finished tasks (mapped to when they finished) past the TTL, oldest
    first, at most ``policy.batch_max`` of them."""
    cutoff = now_ms - policy.task_ttl_ms
    due = ((at, task_id) for task_id, at in finished.items() if at <= cutoff)
    return [task_id for _, task_id in heapq.nsmallest(policy.batch_max, due)]


def expired_ids_to_forget(
    expired: Mapping[str, int], now_ms: int, policy: RetentionPolicy
) -> list[str]:
    """Expired ids (mapped to when they expired) that no longer need to answer 410.

    Those older than the retention go, then the oldest beyond the size bound,
    so the memory of expired ids stays bounded however many tasks expire.
    """
    cutoff = now_ms - policy.expired_ids_retention_ms
    old = [task_id for task_id, at in expired.items() if at <= cutoff]
    excess = len(expired) - len(old) - policy.expired_ids_max
    if excess <= 0:
        return old
    kept = sorted((at, task_id) for task_id, at in expired.items() if at > cutoff)
    return old + [task_id for _, task_id in kept[:excess]]
