"""Live counts of tasks by state, and their recount while the agent keeps writing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stream_processors.state_counts import StateCounts


def test_each_change_moves_one_task_between_states() -> None:
    published: dict[str, int] = {}
    counts = StateCounts(lambda state, n: published.__setitem__(state, n))
    counts.changed("a", None, "PENDING")
    counts.changed("b", None, "PENDING")
    counts.changed("a", "PENDING", "RUNNING")
    counts.changed("a", "RUNNING", "SUCCESS")
    counts.changed("b", "PENDING", None)  # expired
    counts.changed("c", "RUNNING", "RUNNING")  # no change
    assert counts.counts() == {"SUCCESS": 1}
    assert published == {"PENDING": 0, "RUNNING": 0, "SUCCESS": 1}


Value = str | tuple[str, int]  # a state, or a state and its updated_at


def _parts(value: Value | None) -> tuple[str | None, int | None]:
    if isinstance(value, tuple):
        return value
    return value, None


async def _scan(
    table: dict[str, Any], writes: dict[int, tuple[str, Any]], counts: StateCounts
) -> AsyncIterator[tuple[str, dict]]:
    """Yield the table's tasks; before the n-th one the agent writes ``writes[n]``.
    Values are Value (or None in ``writes``: the task is removed)."""
    for n, task_id in enumerate(list(table)):
        if n in writes:
            changed, new = writes[n]
            old = table.get(changed)
            if new is None:
                table.pop(changed, None)
            else:
                table[changed] = new
            counts.changed(changed, _parts(old)[0], *_parts(new))
        await asyncio.sleep(0)
        if task_id in table:
            state, updated_at = _parts(table[task_id])
            yield task_id, {"state": state, "updated_at": updated_at}


async def test_a_recount_is_exact_despite_writes_during_the_scan() -> None:
    table = {f"t{i}": "PENDING" for i in range(10)}
    counts = StateCounts()
    writes = {
        3: ("t0", "SUCCESS"),  # already scanned as PENDING
        5: ("t8", "RUNNING"),  # not scanned yet
        6: ("new", "PENDING"),  # a task the scan's snapshot does not have
        7: ("t1", None),  # scanned, then expired
    }
    await counts.recount(_scan(table, writes, counts), table.get, ["FAILED"])
    assert counts.counts() == dict(Counter(table.values()))
    assert counts.counts() == {"PENDING": 8, "RUNNING": 1, "SUCCESS": 1}


async def test_a_cancelled_recount_leaves_the_next_one_exact() -> None:
    table = {f"t{i}": "PENDING" for i in range(6)}
    counts = StateCounts()
    first = asyncio.create_task(counts.recount(_scan(table, {}, counts), table.get))
    await asyncio.sleep(0)
    second = asyncio.create_task(
        counts.recount(_scan(table, {2: ("t0", "SUCCESS")}, counts), table.get)
    )
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert counts.counts() == {"PENDING": 5, "SUCCESS": 1}


TERMINAL = ("SUCCESS", "FAILED", "CANCELLED")


def test_finished_tasks_are_indexed_with_when_they_finished() -> None:
    counts = StateCounts(terminal=TERMINAL)
    counts.changed("a", None, "PENDING", 1)
    counts.changed("a", "PENDING", "RUNNING", 2)
    assert dict(counts.finished()) == {}
    counts.changed("a", "RUNNING", "SUCCESS", 3)
    counts.changed("b", None, "FAILED", 4)
    assert dict(counts.finished()) == {"a": 3, "b": 4}
    counts.changed("a", "SUCCESS", None)  # expired
    assert dict(counts.finished()) == {"b": 4}
    with pytest.raises(TypeError):
        counts.finished()["c"] = 5  # type: ignore[index]  # read-only


async def test_a_rebuilt_index_is_exact_despite_writes_during_the_scan() -> None:
    table: dict[str, Value] = {f"t{i}": ("SUCCESS" if i < 4 else "RUNNING", i) for i in range(10)}
    counts = StateCounts(terminal=TERMINAL)
    counts.changed("moved-away", None, "SUCCESS", 99)  # a partition this worker lost
    writes = {
        2: ("t0", None),  # scanned as finished, then expired
        3: ("t9", ("SUCCESS", 50)),  # not scanned yet, finishes
        5: ("t4", ("FAILED", 51)),  # scanned as RUNNING, then failed
        6: ("new", ("CANCELLED", 52)),  # not in the scan's snapshot
    }

    def current(task_id: str) -> str | None:
        return _parts(table.get(task_id))[0]

    await counts.recount(_scan(table, writes, counts), current)
    expected = {k: v[1] for k, v in table.items() if isinstance(v, tuple) and v[0] in TERMINAL}
    assert dict(counts.finished()) == expected
    assert expected == {"t1": 1, "t2": 2, "t3": 3, "t4": 51, "t9": 50, "new": 52}
