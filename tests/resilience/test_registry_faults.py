"""The schema registry as a fault: SIGKILLed under load, services restarted without it.

A module of its own, so its own pipeline: every service writes the Confluent
wire format through a local Apicurio Registry that this module starts and
SIGKILLs. The registry keeps its schemas in an H2 file, so a restart brings
the same ids back.

- Warm services cache every id they use: a registry outage must not stop
  them, and tasks submitted during it complete.
- A service (re)started during the outage cannot learn ids: the API answers
  503 with Retry-After, a worker and the processor wait (no dead letter, no
  skipped event, no committed offset past what they could not decode), and
  everything completes once the registry is back.
- A hung registry (SIGSTOP: it takes connections and never answers) makes each
  question wait for the client's timeout: the processor and the API ask from a
  thread, so their event loops (queries, health, commits) do not wait with it.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from asyncarch.local_registry import LocalRegistry
from schemas.registry import value_subject
from tests.helpers import read_all
from tests.resilience.audit import Audit
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
from tests.resilience.ledger import Ledger
from tests.resilience.pipeline import ChaosPipeline
from tests.stack import free_port

pytestmark = [pytest.mark.resilience, pytest.mark.timeout(1200)]
REGISTRY_DOWN_S = 15.0
# The API restarted during a hang learns its ids first, one registry timeout (5 s) each.
HANG_S = 25.0
TASKS = 120
RATE_PER_S = 4.0


class KillableRegistry:
    """The module's registry process: SIGKILL it, start it again on the same port and file."""

    def __init__(self, state_dir: Path) -> None:
        self.registry = LocalRegistry(state_dir=state_dir, port=free_port(), heap="192m")
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return self.registry.url

    def start(self) -> None:
        self.process = self.registry.start()

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.registry.stop(self.process)

    def ids(self, topics: list[str]) -> dict[str, int]:
        """The latest schema id under each topic's value subject."""
        return {
            topic: httpx.get(f"{self.url}/subjects/{value_subject(topic)}/versions/latest")
            .raise_for_status()
            .json()["id"]
            for topic in topics
        }


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KillableRegistry]:
    killable = KillableRegistry(tmp_path_factory.mktemp("registry"))
    killable.start()
    try:
        yield killable
    finally:
        killable.stop()


@pytest.fixture(scope="module")
def chaos(
    registry: KillableRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChaosPipeline]:
    """This module's pipeline, every service writing through ``registry``."""
    pipeline = ChaosPipeline(
        tmp_path_factory.mktemp("chaos-registry"),
        extra_env={"SCHEMA_REGISTRY_URL": registry.url},
    )
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture
def warm(healthy: ChaosPipeline, registry: KillableRegistry) -> ChaosPipeline:
    """The pipeline with the registry up and a task through it (every id cached)."""
    if registry.process is None:
        registry.start()
    with httpx.Client(base_url=healthy.base_url, timeout=10) as client:
        probe = FaultRun(Ledger(), Audit({}, {}), reads=None)  # type: ignore[arg-type]
        probe_partitions(healthy.base_url, probe)
        for task_id in probe.ledger.accepted:
            wait_until(lambda t=task_id: _finished(client, t), 120)
    return healthy


def _finished(client: httpx.Client, task_id: str) -> bool:
    response = client.get(f"/v1/tasks/{task_id}")
    return response.status_code == 200 and response.json()["status"] == "SUCCESS"


def _pipeline_topics(pipeline: ChaosPipeline) -> list[str]:
    topics = pipeline.topics
    return [topics.requests, topics.status, topics.results, topics.task_state]


def _dead_letters(pipeline: ChaosPipeline) -> int:
    return len(read_all(pipeline.kafka, pipeline.topics.dead_letters, 1, timeout_s=5))


def test_registry_sigkilled_while_services_are_warm(
    warm: ChaosPipeline,
    registry: KillableRegistry,
    encoder: Any,
    chaos_size: ChaosSize,
    record_fault: Any,
) -> None:
    ids_before = registry.ids(_pipeline_topics(warm))

    def inject(run: FaultRun) -> None:
        time.sleep(3)
        run.fault_times.append(time.time())
        registry.kill()
        warm.note("SIGKILLed the registry")
        time.sleep(REGISTRY_DOWN_S)
        run.details["accepted_during_outage"] = len(run.ledger.accepted)
        run.details["exited_during_outage"] = warm.exited()
        registry.start()
        warm.note("started the registry")
        run.details["back_at"] = time.time()

    run = run_under_load(warm, encoder, TASKS, RATE_PER_S, inject, settle_s=chaos_size.settle_s)
    outage = [
        t
        for t in run.ledger.accepted.values()
        if run.fault_times[0] <= t.accepted_at <= run.details["back_at"]
    ]
    record_fault(
        fault_row(
            f"schema registry SIGKILL, down {REGISTRY_DOWN_S:.0f} s, services warm",
            run,
            recovery_after(run, run.fault_times[0]),
            f"accepted during the outage: {len(outage)}; 503s: {run.ledger.retries.get('503', 0)}",
        )
    )
    why = run.explain(warm)
    assert_no_loss(run, warm)
    assert len(outage) >= REGISTRY_DOWN_S * RATE_PER_S * 0.5, why
    assert not run.ledger.retries.get("503"), why
    assert not run.details["exited_during_outage"], why
    assert registry.ids(_pipeline_topics(warm)) == ids_before  # its H2 file kept them
    assert _dead_letters(warm) == 0, why


def test_services_restarted_while_the_registry_is_down(
    warm: ChaosPipeline,
    registry: KillableRegistry,
    encoder: Any,
    chaos_size: ChaosSize,
    record_fault: Any,
) -> None:
    ids_before = registry.ids(_pipeline_topics(warm))

    def inject(run: FaultRun) -> None:
        time.sleep(3)
        # Requests pile up on worker-0's partitions (static membership keeps them
        # its own), so the worker restarted during the outage has work to decode.
        warm.kill("worker-0")
        time.sleep(3)
        run.fault_times.append(time.time())
        registry.kill()
        warm.note("SIGKILLed the registry")
        warm.kill("processor")
        warm.start_service("processor")
        warm.start_service("worker-0")
        time.sleep(3)  # the warm API still accepts
        warm.kill("api")
        warm.start_service("api")
        wait_until(warm.ready, 60)
        run.details["refusal"] = _refusal(warm.base_url)
        time.sleep(REGISTRY_DOWN_S)
        run.details["exited_during_outage"] = warm.exited()
        registry.start()
        warm.note("started the registry")
        run.details["back_at"] = time.time()
        probe_partitions(warm.base_url, run)

    run = run_under_load(warm, encoder, TASKS, RATE_PER_S, inject, settle_s=chaos_size.settle_s)
    recover = recovery_after(run, run.details["back_at"])
    refusal = run.details["refusal"]
    record_fault(
        fault_row(
            f"schema registry SIGKILL, down {REGISTRY_DOWN_S:.0f} s; processor, a worker "
            "and the API SIGKILLed and restarted during it",
            run,
            recover,
            f"time counted from the registry's return; 503s: {run.ledger.retries.get('503', 0)}"
            f"; dead letters: {_dead_letters(warm)}; exited: {run.details['exited_during_outage']}",
        )
    )
    why = run.explain(warm)
    assert refusal["status"] == 503 and refusal["retry_after"], refusal
    assert "registry" in refusal["title"].lower(), refusal
    assert run.ledger.retries.get("503"), why
    assert not run.ledger.retries.get("503 without Retry-After"), why
    assert_no_loss(run, warm)
    assert recover is not None and recover < 60, why
    assert not run.details["exited_during_outage"] and not warm.exited(), why
    assert _dead_letters(warm) == 0, why
    assert registry.ids(_pipeline_topics(warm)) == ids_before


def _refusal(base_url: str) -> dict[str, Any]:
    """What a submit gets from an API that cannot learn the request schema's id."""
    response = httpx.post(
        f"{base_url}/v1/tasks",
        json={"kind": "similarity", "inputs": {"item_a": "a", "item_b": "b"}},
        timeout=30,
    )
    body = response.json() if response.headers.get("content-type", "").endswith("json") else {}
    return {
        "status": response.status_code,
        "retry_after": response.headers.get("Retry-After"),
        "title": str(body.get("title", "")),
        "detail": str(body.get("detail", ""))[:300],
    }


def test_services_restarted_while_the_registry_hangs_keep_answering(
    warm: ChaosPipeline,
    registry: KillableRegistry,
    encoder: Any,
    chaos_size: ChaosSize,
    record_fault: Any,
) -> None:
    """SIGSTOP, not SIGKILL: a hung registry takes connections and never answers, so
    each question waits for the client's whole timeout (5 s). The processor and the
    API restarted during the hang have no id cached: they ask from a thread, and
    their event loops keep answering (health pages here) while the events wait for
    the registry and the submits wait for their 503."""
    assert registry.process is not None
    hung = registry.process

    def inject(run: FaultRun) -> None:
        time.sleep(3)
        run.fault_times.append(time.time())
        hung.send_signal(signal.SIGSTOP)
        warm.note("SIGSTOPped the registry")
        try:
            for service in ("processor", "api"):
                warm.kill(service)
                warm.start_service(service)
            # The load's submits carry an Idempotency-Key: the API asks the processor
            # first, which cannot answer yet (503). This one goes to the registry.
            submit = threading.Thread(target=_submit_once, args=(warm.base_url, run.details))
            submit.start()
            run.details["health_s"] = _health_latencies(
                [f"{warm.processor_url}/health/", f"{warm.base_url}/healthz"], HANG_S
            )
            submit.join(30)
            run.details["exited_during_outage"] = warm.exited()
        finally:
            hung.send_signal(signal.SIGCONT)
        warm.note("SIGCONTed the registry")
        run.details["back_at"] = time.time()
        wait_until(warm.ready, 60)
        probe_partitions(warm.base_url, run)

    run = run_under_load(warm, encoder, TASKS, RATE_PER_S, inject, settle_s=chaos_size.settle_s)
    recover = recovery_after(run, run.details["back_at"])
    slowest = {url: max(times, default=None) for url, times in run.details["health_s"].items()}
    record_fault(
        fault_row(
            f"schema registry SIGSTOP (hung), {HANG_S:.0f} s; processor and API SIGKILLed "
            "and restarted during it",
            run,
            recover,
            "time counted from SIGCONT; slowest health answers during the hang: "
            + ", ".join(f"{url.split('/', 3)[-1]} {s:.2f} s" for url, s in slowest.items() if s)
            + f"; a submit without Idempotency-Key: {run.details['refusal'].get('status')} "
            f"in {run.details['refusal'].get('took_s', 0):.1f} s",
        )
    )
    why = run.explain(warm)
    assert "schema registry unavailable" in warm.logs(200_000), "the hang was never met"
    assert all(slowest.values()), f"a health page never answered: {run.details['health_s']}"
    assert max(slowest.values()) < 1.0, f"an event loop waited: {run.details['health_s']}"
    refusal = run.details["refusal"]
    assert refusal["status"] == 503 and "registry" in refusal["title"].lower(), refusal
    assert_no_loss(run, warm)
    assert recover is not None and recover < 60, why
    assert not run.details["exited_during_outage"] and not warm.exited(), why
    assert _dead_letters(warm) == 0, why


def _submit_once(base_url: str, details: dict[str, Any]) -> None:
    """Once the restarted API listens: one submit, what it got and how long it took."""
    wait_until(lambda: _listening(f"{base_url}/healthz"), 60)
    started = time.monotonic()
    details["refusal"] = _refusal(base_url)
    details["refusal"]["took_s"] = time.monotonic() - started


def _listening(url: str) -> bool:
    try:
        return httpx.get(url, timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def _health_latencies(urls: list[str], for_s: float) -> dict[str, list[float]]:
    """How long each health page takes to answer, twice a second, for ``for_s``."""
    latencies: dict[str, list[float]] = {url: [] for url in urls}
    deadline = time.monotonic() + for_s
    while time.monotonic() < deadline:
        for url in urls:
            started = time.monotonic()
            try:
                httpx.get(url, timeout=10)
            except httpx.ConnectError:  # not listening yet: just restarted
                continue
            except httpx.TimeoutException:
                pass  # no answer in 10 s: counted as 10 s
            latencies[url].append(time.monotonic() - started)
        time.sleep(0.5)
    return latencies
