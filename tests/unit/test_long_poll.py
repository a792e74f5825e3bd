"""Long-poll of a task's state: waiters woken by table writes, and the view's wait.

No broker: the table is a dict standing in for the Faust table.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from faust.web.exceptions import ServiceUnavailable

from stream_processors import catch_up, views
from stream_processors.waiters import notify_changed, wait_for_change, waiting_count, wake_all

TASK_ID = "6f1c2f8e-1d4b-4c53-9f3e-2a1b0c9d8e7f"


def _state(state: str, updated_at: int) -> dict:
    return {"task_id": TASK_ID, "state": state, "updated_at": updated_at, "history": []}


async def test_a_write_wakes_the_queries_waiting_on_that_task_only() -> None:
    mine = asyncio.create_task(wait_for_change(TASK_ID, 5))
    other = asyncio.create_task(wait_for_change("other", 0.2))
    await asyncio.sleep(0)  # both registered
    assert waiting_count() == 2
    notify_changed(TASK_ID, _state("RUNNING", 2))
    change = await asyncio.wait_for(mine, 1)
    assert change is not None and change.state == _state("RUNNING", 2)
    assert await other is None
    assert waiting_count() == 0


async def test_a_wait_without_a_write_times_out() -> None:
    assert await wait_for_change(TASK_ID, 0.05) is None
    assert waiting_count() == 0


async def test_a_query_woken_twice_before_it_resumes_gets_the_later_state() -> None:
    """Two events of a task applied in one turn of the agent: the query must not
    answer the first as the task's latest state."""
    waiting = asyncio.create_task(wait_for_change(TASK_ID, 5))
    await asyncio.sleep(0)
    notify_changed(TASK_ID, _state("RUNNING", 2))
    notify_changed(TASK_ID, _state("SUCCESS", 3))
    wake_all()  # a wake without a state keeps the state handed over
    change = await asyncio.wait_for(waiting, 1)
    assert change is not None and change.state == _state("SUCCESS", 3)


async def test_wake_all_answers_every_waiting_query() -> None:
    waits = [asyncio.create_task(wait_for_change(f"t{i}", 5)) for i in range(3)]
    await asyncio.sleep(0)
    wake_all()
    changes = await asyncio.wait_for(asyncio.gather(*waits), 1)
    assert [change is not None and change.state for change in changes] == [None, None, None]


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> dict:
    fake: dict = {}
    monkeypatch.setattr(views, "task_states", fake)
    return fake


async def _write_later(
    table: dict, state: dict, delay_s: float = 0.05, hand_over: bool = False
) -> None:
    await asyncio.sleep(delay_s)
    table[TASK_ID] = state
    notify_changed(TASK_ID, state if hand_over else None)


async def test_the_view_answers_when_the_task_becomes_terminal(table: dict) -> None:
    table[TASK_ID] = _state("PENDING", 1)
    writer = asyncio.create_task(_write_later(table, _state("RUNNING", 2)))
    final = asyncio.create_task(_write_later(table, _state("SUCCESS", 3), 0.15))
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, None), 2)
    await asyncio.gather(writer, final)
    assert answer["state"] == "SUCCESS"


async def test_the_view_answers_the_state_the_write_handed_over_without_reading_it(
    table: dict,
) -> None:
    table[TASK_ID] = _state("PENDING", 1)
    final = asyncio.create_task(_write_later({}, _state("SUCCESS", 3), hand_over=True))
    answer = await asyncio.wait_for(views._await_change(TASK_ID, table[TASK_ID], 5, None), 2)
    await final
    assert answer["state"] == "SUCCESS"
    assert table[TASK_ID]["state"] == "PENDING"  # the view did not read the table


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


@pytest.mark.parametrize(
    ("query", "expected"), [({}, None), ({"written": ""}, None), ({"written": "41"}, 41)]
)
def test_the_written_offset_parameter(query: dict, expected: int | None) -> None:
    assert views._offset_param(query, "written") == expected


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_a_bad_written_offset_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        views._offset_param({"written": value}, "written")


@pytest.fixture
def applied(monkeypatch: pytest.MonkeyPatch) -> dict:
    """The agent's applied offsets; a probe of the broker fails the test."""
    offsets: dict = defaultdict(lambda: -1)
    monkeypatch.setattr(catch_up, "applied_offsets", offsets)

    async def no_probe(*args: object) -> bool:
        raise AssertionError("the broker was probed")

    monkeypatch.setattr(views, "caught_up", no_probe)
    return offsets


async def test_a_first_query_with_the_written_offset_waits_for_the_agent_not_the_broker(
    table: dict, applied: dict
) -> None:
    """The agent applies the task's request (offset 41) a while after the query came."""

    async def agent() -> None:
        await asyncio.sleep(0.2)
        table[TASK_ID] = _state("PENDING", 1)
        notify_changed(TASK_ID)
        applied[(catch_up.topic_settings.requests, 0)] = 41

    applying = asyncio.create_task(agent())
    state = await asyncio.wait_for(views._first_sight(TASK_ID, 0, 41), 2)
    await applying
    assert state is not None and state["state"] == "PENDING"


async def test_a_first_query_past_its_written_offset_answers_unknown_at_once(
    table: dict, applied: dict
) -> None:
    """The agent is past the offset and wrote nothing for the task (it expired): no wait."""
    applied[(catch_up.topic_settings.requests, 0)] = 50
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await views._first_sight(TASK_ID, 0, 41) is None
    assert loop.time() - started < views.FIRST_SIGHT_WAIT_S + 0.5


async def test_a_first_query_whose_offset_is_not_applied_in_time_gets_503(
    table: dict, applied: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    quick = catch_up.processor_settings.model_copy(update={"read_your_writes_timeout_s": 0.2})
    monkeypatch.setattr(catch_up, "processor_settings", quick)
    monkeypatch.setattr(catch_up.app, "rebalancing", False, raising=False)
    with pytest.raises(ServiceUnavailable):
        await asyncio.wait_for(views._first_sight(TASK_ID, 0, 41), 2)


def test_the_view_looks_up_deliveries_only_for_a_task_that_has_some(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    looked_up: list[str] = []
    deliveries = {TASK_ID: {"webhook": {"attempts": []}}}

    class Table(dict):
        def get(self, key: object, default: object = None) -> object:
            looked_up.append(str(key))
            return super().get(key, default)

    monkeypatch.setattr(views, "webhook_deliveries", Table(deliveries))
    plain = {**_state("SUCCESS", 3), "callback_url": None, "deliver_to": None}
    assert views._deliveries(plain) is None
    assert views._deliveries({**plain, "state": "RUNNING", "callback_url": "https://x"}) is None
    assert looked_up == []
    hooked = {**plain, "callback_url": "https://example.com/hook"}
    assert views._deliveries(hooked) == deliveries[TASK_ID]
    assert looked_up == [TASK_ID]
