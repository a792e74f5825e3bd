"""Tasks by state in this worker's partitions, kept live for the gauge and /monitor.

Every table write and removal adjusts the counts at once. After a rebalance
(partitions moved, the table restored) they are recounted from the table; the
scan yields to the event loop, so writes made while it runs are noted and,
when it ends, the states it read for those tasks are replaced by their current
ones in one synchronous step. No awaits in between: the result is exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable, Iterable
from typing import Any

__all__ = ["StateCounts"]


class StateCounts:
    """Counts of task states, updated per change, rebuilt by ``recount``."""

    def __init__(self, on_change: Callable[[str, int], None] = lambda state, n: None) -> None:
        self._counts: Counter[str] = Counter()
        self._on_change = on_change
        self._touched: list[set[str]] = []  # per running recount: task ids written since

    def counts(self) -> dict[str, int]:
        """The current counts (states with no task are absent)."""
        return {state: n for state, n in self._counts.items() if n > 0}

    def changed(self, task_id: str, old: str | None, new: str | None) -> None:
        """A task's state went from ``old`` to ``new`` (None: absent)."""
        if old == new:
            return
        for touched in self._touched:
            touched.add(task_id)
        for state, delta in ((old, -1), (new, 1)):
            if state is not None:
                self._counts[state] += delta
                self._on_change(state, self._counts[state])

    async def recount(
        self,
        items: AsyncIterable[tuple[str, dict[str, Any]]],
        current: Callable[[str], str | None],
        states: Iterable[str] = (),
    ) -> None:
        """Rebuild from ``items`` (this worker's tasks); ``current`` reads a task's
        state now (None when absent or not owned)."""
        touched: set[str] = set()
        self._touched.append(touched)
        try:
            scanned = {task_id: state["state"] async for task_id, state in items}
        finally:
            self._touched.remove(touched)
        counts = Counter(scanned.values())
        for task_id in touched:  # written during the scan: take them as they are now
            if (seen := scanned.get(task_id)) is not None:
                counts[seen] -= 1
            if (now := current(task_id)) is not None:
                counts[now] += 1
        self._counts = counts
        for state in {*states, *counts}:
            self._on_change(state, counts[state])
