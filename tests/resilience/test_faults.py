"""Faults under steady load: no accepted task is lost or duplicated.

Each test runs the real pipeline (own broker, real model, real processes),
injects one kind of fault for real while a load generator submits similarity
tasks, then audits every task the API accepted (see ``audit.py``) and adds a
row to the chaos table. They share one pipeline (per module), in file order.
The poison test has a module and a pipeline of its own: a poison message
that crashes a worker crashes every worker restarted after it.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.resilience.faults import (
    ChaosSize,
    FaultRun,
    assert_no_loss,
    fault_row,
    probe_partitions,
    recovery_after,
    run_under_load,
    wait_until,
)
from tests.resilience.pipeline import ChaosPipeline
from tests.resilience.watch import MemoryWatch

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(1800)]
MIB = 1024 * 1024
KILL_EVERY_S = 12.0


def test_workers_sigkilled_repeatedly(
    healthy: ChaosPipeline, encoder: Any, chaos_size: ChaosSize, record_fault: Any
) -> None:
    kills = max(2, int(chaos_size.load_s // KILL_EVERY_S))
    # The load lasts past the last kill, however small the run.
    rate = min(chaos_size.rate_per_s, chaos_size.tasks_per_fault / ((kills + 1) * KILL_EVERY_S))

    def inject(run: FaultRun) -> None:
        for i in range(kills):
            time.sleep(KILL_EVERY_S)
            name = healthy.worker_names[i % len(healthy.worker_names)]
            run.fault_times.append(time.time())
            healthy.kill(name)
            healthy.start_service(name)  # same slot: same transactional.id and instance id
            probe_partitions(healthy.base_url, run)
            healthy.wait_processing()

    run = run_under_load(
        healthy, encoder, chaos_size.tasks_per_fault, rate, inject, settle_s=chaos_size.settle_s
    )
    recoveries = [recovery_after(run, at) for at in run.fault_times]
    worst = None if None in recoveries else max(recoveries)  # type: ignore[type-var]
    record_fault(fault_row(f"worker SIGKILL x{kills} (restarted in its slot)", run, worst))
    assert_no_loss(run, healthy)
    assert worst is not None and worst < 30, f"recoveries {recoveries}\n{run.explain(healthy)}"


def test_processor_sigkilled_recovers_its_table(
    healthy: ChaosPipeline, encoder: Any, chaos_size: ChaosSize, record_fault: Any
) -> None:
    def inject(run: FaultRun) -> None:
        time.sleep(chaos_size.load_s * 0.3)
        known = next(iter(run.ledger.accepted))
        run.fault_times.append(time.time())
        healthy.kill("processor")
        healthy.start_service("processor")
        wait_until(lambda: _answers(healthy, known), 60, 0.1)
        run.details["answers_again_s"] = time.time() - run.fault_times[0]
        wait_until(healthy.processor_ready, 60)
        run.details["recovery_metric_s"] = healthy.metric(
            f"{healthy.processor_url}/metrics/", "asyncarch_processor_recovery_seconds"
        )

    run = run_under_load(
        healthy,
        encoder,
        chaos_size.tasks_per_fault,
        chaos_size.rate_per_s,
        inject,
        settle_s=chaos_size.settle_s,
    )
    answers_again = run.details["answers_again_s"]
    record_fault(
        fault_row(
            "Faust processor SIGKILL (restarted)",
            run,
            answers_again,
            f"table recovery metric {run.details['recovery_metric_s'] or 0:.1f} s; "
            f"reads while recovering: {dict(run.reads.answers)}",
        )
    )
    assert_no_loss(run, healthy)
    assert answers_again <= 10, run.explain(healthy)


def _answers(pipeline: ChaosPipeline, task_id: str) -> bool:
    try:
        return httpx.get(f"{pipeline.base_url}/v1/tasks/{task_id}", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_backpressure_answers_503_and_memory_stays_bounded(
    healthy: ChaosPipeline, encoder: Any, chaos_size: ChaosSize, record_fault: Any, tmp_path: Any
) -> None:
    """A burst far faster than the workers drain, against an API that allows few
    waiting tasks: it must refuse with 503 + Retry-After, and nothing may grow."""
    api = healthy.extra_api(API_MAX_WAITING_TASKS="5", API_LAG_CHECK_INTERVAL_S="0.1")
    memory = MemoryWatch(lambda: {**healthy.pids(), "api-backpressure": api.pid})
    memory.start()
    burst = max(100, chaos_size.tasks_per_fault * 2)
    try:
        run = run_under_load(
            healthy,
            encoder,
            burst,
            rate_per_s=1000,
            inject=lambda run: run.fault_times.append(time.time()),
            base_url=f"http://127.0.0.1:{api.port}",
            settle_s=chaos_size.settle_s,
            threads=16,
        )
    finally:
        memory.stop()
        api.stop()
    growth = {name: round(b / MIB) for name, b in memory.growth().items()}
    peak = {name: round(b / MIB) for name, b in memory.peak.items()}
    finished = [s["updated_at"] / 1000 for s in run.audit.states.values() if s.get("updated_at")]
    record_fault(
        fault_row(
            f"slow consumer: burst of {burst} against API_MAX_WAITING_TASKS=5",
            run,
            max(finished, default=run.fault_times[0]) - run.fault_times[0],
            f"503s: {run.ledger.retries.get('503', 0)}; RSS growth MiB {growth}",
        )
    )
    why = f"{run.explain(healthy)}\npeak RSS MiB {peak} growth {growth}"
    assert run.ledger.retries.get("503", 0) > 0, why
    assert not run.ledger.retries.get("503 without Retry-After"), why
    assert_no_loss(run, healthy)
    assert all(g < 300 for g in growth.values()), why
    assert all(p < 2048 for p in peak.values()), why


def test_broker_sigkilled_and_restarted(
    healthy: ChaosPipeline, encoder: Any, chaos_size: ChaosSize, record_fault: Any
) -> None:
    def inject(run: FaultRun) -> None:
        time.sleep(chaos_size.load_s * 0.3)
        run.fault_times.append(time.time())
        healthy.kill_broker()
        time.sleep(chaos_size.broker_down_s)
        healthy.start_broker()
        run.details["back_at"] = time.time()
        run.details["processor_ready_after_s"] = wait_until(healthy.processor_ready, 120)
        probe_partitions(healthy.base_url, run)
        run.details["exited_during_outage"] = healthy.exited()

    run = run_under_load(
        healthy,
        encoder,
        chaos_size.tasks_per_fault,
        chaos_size.rate_per_s,
        inject,
        settle_s=chaos_size.settle_s,
    )
    recover = recovery_after(run, run.details["back_at"])
    exited = run.details["exited_during_outage"] | healthy.exited()
    record_fault(
        fault_row(
            f"broker SIGKILL, down {chaos_size.broker_down_s:.0f} s, restarted",
            run,
            recover,
            f"time counted from the broker's return; 503s: {run.ledger.retries.get('503', 0)}; "
            f"processor ready {run.details['processor_ready_after_s']:.1f} s after it"
            + (f"; services exited: {exited}" if exited else ""),
        )
    )
    assert_no_loss(run, healthy)
    assert not exited, f"services exited during the outage: {exited}\n{run.explain(healthy)}"
    assert recover is not None, run.explain(healthy)
