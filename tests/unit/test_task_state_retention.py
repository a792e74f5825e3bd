"""Retention decisions: which finished tasks expire, which expired ids are forgotten."""

from __future__ import annotations

import pytest

from stream_processors.retention import (
    RetentionPolicy,
    expired_ids_to_forget,
    finished_to_expire,
    is_expired,
    tasks_to_expire,
)

TTL = 10_000
POLICY = RetentionPolicy(
    task_ttl_ms=TTL, expired_ids_retention_ms=60_000, expired_ids_max=3, batch_max=100
)
NOW = 1_000_000


def _state(state: str, updated_at: int | None) -> dict:
    return {"task_id": "t", "state": state, "updated_at": updated_at}


@pytest.mark.parametrize("state", ["SUCCESS", "FAILED", "CANCELLED"])
def test_a_terminal_task_expires_once_the_ttl_has_passed(state: str) -> None:
    assert not is_expired(_state(state, NOW - TTL + 1), NOW, TTL)
    assert is_expired(_state(state, NOW - TTL), NOW, TTL)


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "RETRYING"])
def test_a_task_under_way_never_expires(state: str) -> None:
    assert not is_expired(_state(state, 0), NOW, TTL)


def test_missing_state_or_time_never_expires() -> None:
    assert not is_expired(None, NOW, TTL)
    assert not is_expired(_state("SUCCESS", None), NOW, TTL)


def test_tasks_to_expire_picks_only_due_ones_and_respects_the_batch_bound() -> None:
    states = [
        ("old", _state("SUCCESS", 0)),
        ("fresh", _state("SUCCESS", NOW)),
        ("running", _state("RUNNING", 0)),
        ("old-failed", _state("FAILED", 5)),
        ("gone", None),
    ]
    assert tasks_to_expire(states, NOW, POLICY) == ["old", "old-failed"]
    small = RetentionPolicy(TTL, 60_000, 3, batch_max=1)
    assert tasks_to_expire(states, NOW, small) == ["old"]


def test_finished_to_expire_picks_the_oldest_past_the_ttl() -> None:
    finished = {"new": NOW - TTL + 1, "edge": NOW - TTL, "oldest": 0, "old": 10}
    assert finished_to_expire(finished, NOW, POLICY) == ["oldest", "old", "edge"]
    small = RetentionPolicy(TTL, 60_000, 3, batch_max=2)
    assert finished_to_expire(finished, NOW, small) == ["oldest", "old"]
    assert finished_to_expire({}, NOW, POLICY) == []


def test_expired_ids_are_forgotten_after_their_retention() -> None:
    expired = {"a": NOW - 60_000, "b": NOW - 59_999}
    assert expired_ids_to_forget(expired, NOW, POLICY) == ["a"]


def test_expired_ids_beyond_the_size_bound_are_forgotten_oldest_first() -> None:
    expired = {"e": NOW - 1, "a": NOW - 5, "d": NOW - 2, "c": NOW - 3, "b": NOW - 4}
    assert sorted(expired_ids_to_forget(expired, NOW, POLICY)) == ["a", "b"]
    old_and_many = {**expired, "z": 0}
    assert sorted(expired_ids_to_forget(old_and_many, NOW, POLICY)) == ["a", "b", "z"]
