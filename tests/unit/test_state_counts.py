"""Live counts of tasks by state, and their recount while the agent keeps writing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

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


async def _scan(
    table: dict[str, str], writes: dict[int, tuple[str, str | None]], counts: StateCounts
) -> AsyncIterator[tuple[str, dict]]:
    """Yield the table's tasks; before the n-th one the agent writes ``writes[n]``."""
    for n, task_id in enumerate(list(table)):
        if n in writes:
            changed, new = writes[n]
            old = table.get(changed)
            if new is None:
                table.pop(changed, None)
            else:
                table[changed] = new
            counts.changed(changed, old, new)
        await asyncio.sleep(0)
        if task_id in table:
            yield task_id, {"state": table[task_id]}


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
