"""Tasks by state in this worker's partitions, kept live for the gauge and /monitor,
and when each finished task finished, for the expiry timer.

Every table write and removal adjusts both at once. After a rebalance
(partitions moved, the table restored) they are rebuilt from the table; the
scan yields to the event loop, so writes made while it runs are noted and,
when it ends, the states it read for those tasks are replaced by their current
ones in one synchronous step. No awaits in between: the result is exact.

The expiry timer used to scan (and decode) every state of the table each
minute to find the finished ones, a cost that grew with the table (a week of
tasks by default); with this index a sweep looks only at the finished ids.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["StateCounts"]


class StateCounts:
    """Counts of task states and finish times of tasks in a ``terminal`` state,
    updated per change, rebuilt by ``recount``."""

    def __init__(
        self,
        on_change: Callable[[str, int], None] = lambda state, n: None,
        terminal: Collection[str] = (),
    ) -> None:
        self._counts: Counter[str] = Counter()
        self._on_change = on_change
        self._terminal = frozenset(terminal)
        self._finished: dict[str, int] = {}
        self._touched: list[set[str]] = []  # per running recount: task ids written since

    def counts(self) -> dict[str, int]:
        """The current counts (states with no task are absent)."""
        return {state: n for state, n in self._counts.items() if n > 0}

    def finished(self) -> Mapping[str, int]:
        """Tasks in a terminal state, mapped to when they reached it (epoch ms)."""
        return MappingProxyType(self._finished)

    def changed(
        self, task_id: str, old: str | None, new: str | None, updated_at: int | None = None
    ) -> None:
        """A task's state went from ``old`` to ``new`` (None: absent) at ``updated_at``."""
        if new in self._terminal and updated_at is not None:
            self._finished[task_id] = updated_at
        else:
            self._finished.pop(task_id, None)
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
            scanned = {
                task_id: (state["state"], state.get("updated_at")) async for task_id, state in items
            }
        finally:
            self._touched.remove(touched)
        counts = Counter(state for state, _ in scanned.values())
        finished = {
            task_id: at
            for task_id, (state, at) in scanned.items()
            if state in self._terminal and at is not None
        }
        for task_id in touched:  # written during the scan: take them as they are now
            if (seen := scanned.get(task_id)) is not None:
                counts[seen[0]] -= 1
            if (now := current(task_id)) is not None:
                counts[now] += 1
            # changed() kept the live index exact for every task written meanwhile
            finished.pop(task_id, None)
            if (at := self._finished.get(task_id)) is not None:
                finished[task_id] = at
        self._counts = counts
        self._finished = finished
        for state in {*states, *counts}:
            self._on_change(state, counts[state])
