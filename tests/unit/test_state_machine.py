"""The task-state machine: forward only, terminal is final, order and duplicates harmless."""

from __future__ import annotations

import itertools
import random

import pytest

from stream_processors.state_machine import TaskEvent, apply

REQUEST = TaskEvent(
    "t1",
    "PENDING",
    100,
    attempt=0,
    request={"kind": "similarity", "submitted_at": 100, "callback_url": None},
)
RUNNING = TaskEvent("t1", "RUNNING", 200, attempt=1)
RETRYING = TaskEvent("t1", "RETRYING", 250, attempt=1, error={"type": "E", "message": "m"})
RUNNING_2 = TaskEvent("t1", "RUNNING", 300, attempt=2)
SUCCESS = TaskEvent("t1", "SUCCESS", 400, attempt=2, result={"output": {"similarity": 0.5}})
FAILED = TaskEvent("t1", "FAILED", 450, attempt=2, error={"type": "E", "message": "late"})


def fold(events: list[TaskEvent]) -> dict:
    state = None
    for event in events:
        state = apply(state, event) or state
    assert state is not None
    return state


def test_the_happy_path() -> None:
    state = fold([REQUEST, RUNNING, SUCCESS])
    assert state["state"] == "SUCCESS"
    assert state["kind"] == "similarity"
    assert state["result"] == {"output": {"similarity": 0.5}}
    assert [h["state"] for h in state["history"]] == ["PENDING", "RUNNING", "SUCCESS"]


def test_a_request_alone_is_pending() -> None:
    state = apply(None, REQUEST)
    assert state is not None and state["state"] == "PENDING" and state["submitted_at"] == 100


def test_terminal_is_final() -> None:
    state = fold([REQUEST, RUNNING, SUCCESS])
    assert apply(state, FAILED) is None
    assert apply(state, RUNNING_2) is None


def test_late_events_never_move_backwards() -> None:
    state = fold([REQUEST, RUNNING, RETRYING, RUNNING_2])
    assert apply(state, RUNNING) is None
    assert apply(state, RETRYING) is None
    assert apply(state, REQUEST) is None
    assert state["attempt"] == 2


def test_duplicates_change_nothing() -> None:
    state = fold([REQUEST, RUNNING])
    assert apply(state, RUNNING) is None
    assert apply(state, REQUEST) is None


def test_request_after_status_fills_in_details_without_moving_back() -> None:
    state = fold([RUNNING, REQUEST])
    assert state["state"] == "RUNNING"
    assert state["kind"] == "similarity"
    assert state["submitted_at"] == 100


def test_progress_only_moves_forward() -> None:
    state = fold([REQUEST, RUNNING, TaskEvent("t1", "RUNNING", 210, attempt=1, progress=0.5)])
    assert state["progress"] == 0.5
    assert apply(state, TaskEvent("t1", "RUNNING", 220, attempt=1, progress=0.25)) is None


@pytest.mark.parametrize("seed", range(5))
def test_any_order_with_duplicates_ends_in_the_same_terminal_state(seed: int) -> None:
    events = [REQUEST, RUNNING, RETRYING, RUNNING_2, SUCCESS]
    expected = fold(events)
    rng = random.Random(seed)
    for _ in range(50):
        shuffled = events + rng.sample(events, 3)
        rng.shuffle(shuffled)
        state = fold(shuffled)
        assert state["state"] == "SUCCESS"
        assert state["result"] == expected["result"]
        assert state["kind"] == "similarity"


def test_replaying_a_prefix_again_is_idempotent() -> None:
    events = [REQUEST, RUNNING, RETRYING, RUNNING_2, SUCCESS]
    for cut in range(len(events) + 1):
        once = fold(events)
        replayed = fold(events[:cut] + events)
        assert replayed == once


def test_first_terminal_event_wins() -> None:
    for first, second in itertools.permutations([SUCCESS, FAILED]):
        assert fold([REQUEST, first, second])["state"] == first.state
