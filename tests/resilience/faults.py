"""One fault under steady load: the load, the observers, the audit and the table row."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from aiokafka.partitioner import murmur2

from tests.helpers import eventually
from tests.resilience.audit import TERMINAL, Audit, audit
from tests.resilience.ledger import Ledger, LoadGenerator, similarity_inputs, submit
from tests.resilience.pipeline import PARTITIONS, ChaosPipeline
from tests.resilience.watch import ReadWatch

__all__ = [
    "ChaosSize",
    "FaultRow",
    "FaultRun",
    "assert_no_loss",
    "fault_row",
    "partition_of",
    "probe_partitions",
    "recovery_after",
    "run_under_load",
    "wait_until",
]


@dataclass(frozen=True)
class ChaosSize:
    """How big a fault test runs."""

    tasks_per_fault: int
    rate_per_s: float
    broker_down_s: float
    full: bool

    @property
    def settle_s(self) -> float:
        """How long the audit waits for accepted tasks to finish after the load."""
        return 300.0 if self.full else 90.0

    @property
    def load_s(self) -> float:
        return self.tasks_per_fault / self.rate_per_s


@dataclass
class FaultRow:
    """One line of the chaos table."""

    fault: str
    submitted: int
    accepted: int
    completed: int
    lost: int
    duplicated: int
    recover_s: float | None
    notes: str = ""


def partition_of(task_id: str) -> int:
    """The task's partition in every task topic (the Java client's murmur2)."""
    return (murmur2(task_id.encode()) & 0x7FFFFFFF) % PARTITIONS


@dataclass
class FaultRun:
    """What a fault test saw."""

    ledger: Ledger
    audit: Audit
    reads: ReadWatch
    fault_times: list[float] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def explain(self, pipeline: ChaosPipeline) -> str:
        """Everything a failing assertion should show."""
        return (
            f"lost={len(self.audit.lost)} {self.audit.lost[:5]} states of lost: "
            f"{[self.audit.states.get(t, {}).get('status') for t in self.audit.lost[:5]]}\n"
            f"duplicated={len(self.audit.duplicated)} {self.audit.duplicated[:5]}\n"
            f"mismatched={self.audit.mismatched[:5]}\nnot success={self.audit.not_success}\n"
            f"wrong reads={self.reads.wrong[:5]} answers={dict(self.reads.answers)}\n"
            f"client retries={dict(self.ledger.retries)} unexpected={self.ledger.unexpected[:5]}"
            f" given up={self.ledger.given_up}\nexited={pipeline.exited()}\n"
            f"details={self.details}\n{pipeline.logs()}"
        )


def run_under_load(
    pipeline: ChaosPipeline,
    encoder: Any,
    total: int,
    rate_per_s: float,
    inject: Callable[[FaultRun], None],
    base_url: str | None = None,
    settle_s: float = 180.0,
    threads: int = 4,
) -> FaultRun:
    """Start the load, run ``inject`` (which records its fault times), let the load
    finish, then audit every accepted task."""
    url = base_url or pipeline.base_url
    ledger = Ledger()
    load = LoadGenerator(url, ledger, rate_per_s, total, threads=threads).start()
    reads = ReadWatch(url, ledger)
    reads.start()
    run = FaultRun(ledger, Audit({}, {}), reads)
    try:
        inject(run)
        load.join(total / rate_per_s + load.give_up_s + 30)
    finally:
        load.stop()
        reads.stop()
    run.audit = audit(
        ledger,
        url,
        pipeline.kafka,
        pipeline.topics.results,
        encoder,
        timeout_s=settle_s,
        registry_url=pipeline.extra_env.get("SCHEMA_REGISTRY_URL"),
    )
    return run


def probe_partitions(base_url: str, run: FaultRun, give_up_s: float = 180.0) -> None:
    """Submit tasks (into the ledger) until one was accepted on every partition, so
    ``recovery_after`` has a task to time on each, however the load is paced."""
    rng = random.Random()
    covered: set[int] = set()
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for _ in range(PARTITIONS * 20):
            task = submit(client, run.ledger, similarity_inputs(rng), give_up_s)
            if task is not None:
                covered.add(partition_of(task.task_id))
            if len(covered) == PARTITIONS:
                return


def recovery_after(run: FaultRun, fault_at: float) -> float | None:
    """Seconds from ``fault_at`` until, on every partition, the first task accepted
    after it had finished (its terminal ``updated_at``); None if a partition
    got no such task."""
    first: dict[int, tuple[float, str]] = {}
    for task in run.ledger.accepted.values():
        if task.accepted_at < fault_at:
            continue
        partition = partition_of(task.task_id)
        if partition not in first or task.accepted_at < first[partition][0]:
            first[partition] = (task.accepted_at, task.task_id)
    if len(first) < PARTITIONS:
        return None
    states = [run.audit.states.get(task_id, {}) for _, task_id in first.values()]
    finished = [s.get("updated_at") if s.get("status") in TERMINAL else None for s in states]
    if any(at is None for at in finished):
        return None
    return max(at / 1000 for at in finished) - fault_at  # type: ignore[operator]


def wait_until(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> float:
    """Seconds until ``condition()`` held; raises AssertionError after ``timeout_s``."""
    started = time.monotonic()
    eventually(condition, timeout_s, "condition met", interval_s)
    return time.monotonic() - started


def fault_row(fault: str, run: FaultRun, recover_s: float | None, notes: str = "") -> FaultRow:
    """The table row of a finished fault run."""
    return FaultRow(
        fault=fault,
        submitted=run.ledger.submitted,
        accepted=len(run.ledger.accepted),
        completed=run.audit.completed,
        lost=len(run.audit.lost),
        duplicated=len(run.audit.duplicated),
        recover_s=recover_s,
        notes=notes,
    )


def assert_no_loss(run: FaultRun, pipeline: ChaosPipeline) -> None:
    """Every accepted task finished once, with the model's answer; no read was wrong."""
    why = run.explain(pipeline)
    assert run.ledger.accepted, why
    assert not run.audit.lost, why
    assert not run.audit.duplicated, why
    assert not run.audit.mismatched, why
    assert run.audit.checked > 0, why
    assert not run.ledger.unexpected, why
    assert not run.reads.wrong, why
