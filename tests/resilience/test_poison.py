"""Poison messages on the requests topic are dead-lettered, and throughput holds.

A module of its own, so its own pipeline: a poison message that crashed a
worker would crash every worker restarted after it, and every later test.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import KafkaError

from tests.resilience.faults import ChaosSize, FaultRun, assert_no_loss, fault_row, run_under_load
from tests.resilience.pipeline import ChaosPipeline
from tests.resilience.poison import dead_letters, write_poison

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(1800)]


def test_poison_messages_are_dead_lettered_and_throughput_holds(
    healthy: ChaosPipeline, encoder: Any, chaos_size: ChaosSize, record_fault: Any
) -> None:
    def inject(run: FaultRun) -> None:
        time.sleep(chaos_size.load_s * 0.3)
        run.fault_times.append(time.time())
        run.details["writes"] = write_poison(healthy.kafka, healthy.topics.requests)

    run = run_under_load(
        healthy,
        encoder,
        chaos_size.tasks_per_fault,
        chaos_size.rate_per_s,
        inject,
        settle_s=chaos_size.settle_s,
    )
    writes = run.details["writes"]
    huge = writes.pop("10 MiB value")
    written = {name: w for name, w in writes.items() if isinstance(w, tuple)}
    letters = dead_letters(
        healthy.kafka, healthy.topics.dead_letters, set(written.values()), timeout_s=60
    )
    missing = sorted(name for name, where in written.items() if where not in letters)
    recover = max((letter["failed_at"].timestamp() for letter in letters.values()), default=None)
    latencies = [
        s["updated_at"] / 1000 - run.ledger.accepted[t].accepted_at
        for t, s in run.audit.states.items()
        if s.get("updated_at") and run.ledger.accepted[t].accepted_at > run.fault_times[0]
    ]
    record_fault(
        fault_row(
            "poison messages (random bytes, unknown fingerprint, ~1 MB value; 10 MiB refused)",
            run,
            None if recover is None else recover - run.fault_times[0],
            f"dead-lettered {len(letters)}/{len(written)}; max latency after poison "
            f"{max(latencies, default=0):.1f} s",
        )
    )
    why = run.explain(healthy)
    assert isinstance(huge, KafkaError) and huge.code() == KafkaError.MSG_SIZE_TOO_LARGE, huge
    assert len(written) == 3, f"poison writes refused: {writes}"
    assert not missing, f"not dead-lettered: {missing}\n{why}"
    assert all(letter["source_topic"] == healthy.topics.requests for letter in letters.values())
    assert_no_loss(run, healthy)
    assert max(latencies, default=0) < 30, f"throughput did not hold\n{why}"
    assert not healthy.exited(), why
