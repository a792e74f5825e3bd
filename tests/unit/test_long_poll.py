"""Long-poll of a task's state: waiters woken by table writes, and the view's wait.

No broker: the table is a dict standing in for the Faust table.
"""

from __future__ import annotations

import asyncio

import pytest

from stream_processors import views
from stream_processors.waiters import notify_changed, wait_for_change, waiting_count, wake_all

TASK_ID = "6f1c2f8e-1d4b-4c53-9f3e-2a1b0c9d8e7f"


def _state(state: str, updated_at: int) -> dict:
    return {"task_id": TASK_ID, "state": state, "updated_at": updated_at, "history": []}


async def test_a_write_wakes_the_queries_waiting_on_that_task_only() -> None:
    mine = asyncio.create_task(wait_for_change(TASK_ID, 5))
    other = asyncio.create_task(wait_for_change("other", 0.2))
    await asyncio.sleep(0)  # both registered
    assert waiting_count() == 2
    notify_changed(TASK_ID)
    assert await asyncio.wait_for(mine, 1) is True
    assert await other is False
    assert waiting_count() == 0


async def test_a_wait_without_a_write_times_out() -> None:
    assert await wait_for_change(TASK_ID, 0.05) is False
    assert waiting_count() == 0


async def test_wake_all_answers_every_waiting_query() -> None:
    waits = [asyncio.create_task(wait_for_change(f"t{i}", 5)) for i in range(3)]
    await asyncio.sleep(0)
    wake_all()
    assert await asyncio.wait_for(asyncio.gather(*waits), 1) == [True, True, True]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict:
    fake: dict = {}
    monkeypatch.setattr(views, "task_states", fake)
    return fake


async def _write_later(table: dict, state: dict, delay_s: float = 0.05) -> None:
    await asyncio.sleep(delay_s)
    table[TASK_ID] = state
    notify_changed(TASK_ID)


async def test_the_view_answers_when_the_task_becomes_terminal(table: dict) -> None:
    table[TASK_ID] = _state("PENDING", 1)
    writer = asyncio.create_task(_write_later(table, _state("RUNNING", 2)))
    final = asyncio.create_task(_write_later(table, _state("SUCCESS", 3), 0.15))
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, None), 2)
    await asyncio.gather(writer, final)
    assert answer["state"] == "SUCCESS"


async def test_the_view_with_since_answers_at_the_next_change(table: dict) -> None:
    table[TASK_ID] = _state("PENDING", 1)
    writer = asyncio.create_task(_write_later(table, _state("RUNNING", 2)))
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, 1), 2)
    await writer
    assert (answer["state"], answer["updated_at"]) == ("RUNNING", 2)


async def test_the_view_with_since_answers_a_change_in_the_same_millisecond(table: dict) -> None:
    table[TASK_ID] = _state("RETRYING", 2)
    writer = asyncio.create_task(_write_later(table, _state("RUNNING", 2)))
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, 2), 2)
    await writer
    assert answer["state"] == "RUNNING"


async def test_the_view_answers_at_once_when_since_is_already_stale(table: dict) -> None:
    table[TASK_ID] = _state("RUNNING", 2)
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, 1), 0.5)
    assert answer["state"] == "RUNNING"
    assert waiting_count() == 0


async def test_the_view_answers_the_unchanged_state_after_the_wait(table: dict) -> None:
    table[TASK_ID] = _state("RUNNING", 2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    answer = await views._await_change(TASK_ID, table[TASK_ID], 0.2, 2)
    assert answer["state"] == "RUNNING"
    assert 0.2 <= loop.time() - started < 1.0


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, (0.0, None)), ({"wait": "2.5"}, (2.5, None)), ({"wait": "1", "since": "7"}, (1.0, 7))],
)
def test_long_poll_parameters(query: dict, expected: tuple) -> None:
    assert views._long_poll_params(query) == expected


@pytest.mark.parametrize("query", [{"wait": "-1"}, {"wait": "61"}, {"wait": "x"}, {"since": "y"}])
def test_bad_long_poll_parameters_are_refused(query: dict) -> None:
    with pytest.raises(ValueError):
        views._long_poll_params(query)
