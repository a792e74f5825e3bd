"""Supervisor logic without processes: backoff, restart policy, slots, claims, ports."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path
from typing import Any

import pytest

from asyncarch.ownership import AlreadyRunning, OwnerLock, busy_ports, port_taken
from asyncarch.process import describe_exit, listens_on
from asyncarch.restarts import Backoff, SupervisorMetrics, wants_restart
from asyncarch.supervisor import RestartRules, Service, ServiceGroup, Supervisor
from asyncarch.up import SupervisorSettings, worker_slot_env


def test_backoff_doubles_from_one_second_to_a_thirty_second_cap() -> None:
    backoff = Backoff(initial_s=1, max_s=30, reset_after_s=60)
    delays = [backoff.next_delay(uptime_s=0.5) for _ in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_starts_over_after_a_long_enough_run() -> None:
    backoff = Backoff(initial_s=1, max_s=30, reset_after_s=60)
    for _ in range(4):
        backoff.next_delay(uptime_s=1)
    assert backoff.next_delay(uptime_s=59) == 16
    assert backoff.next_delay(uptime_s=60) == 1
    assert backoff.next_delay(uptime_s=2) == 2


@pytest.mark.parametrize(
    ("policy", "returncode", "restarted"),
    [
        ("on-failure", 1, True),
        ("on-failure", -signal.SIGKILL, True),
        ("on-failure", 0, False),
        ("always", 0, True),
        ("no", -signal.SIGKILL, False),
    ],
)
def test_restart_policy_follows_systemd(policy: str, returncode: int, restarted: bool) -> None:
    assert wants_restart(policy, returncode) is restarted  # type: ignore[arg-type]


def test_exits_are_described_by_code_or_signal_name() -> None:
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-signal.SIGKILL) == "signal SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "signal SIGSEGV"


def test_each_worker_slot_has_a_stable_identity_and_its_own_metrics_port() -> None:
    assert worker_slot_env(2, metrics_port=9200) == {
        "WORKER_WORKER_ID": "worker-2",
        "WORKER_GROUP_INSTANCE_ID": "worker-2",
        "WORKER_METRICS_PORT": "9201",
    }
    assert "WORKER_METRICS_PORT" not in worker_slot_env(1, metrics_port=0)


def test_supervisor_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPERVISOR_WORKERS", "3")
    monkeypatch.setenv("SUPERVISOR_RESTART_MAX_S", "5")
    settings = SupervisorSettings()
    assert settings.workers == 3
    assert settings.rules().max_s == 5
    assert settings.metrics_port == 0
    with pytest.raises(ValueError):
        SupervisorSettings(workers=0)


def test_a_second_claim_names_the_holder_until_the_first_is_released(tmp_path: Path) -> None:
    first, second = OwnerLock(tmp_path / "x.lock"), OwnerLock(tmp_path / "x.lock")
    assert first.holder() is None
    first.acquire(what="asyncarch up", api="http://127.0.0.1:1")
    with pytest.raises(
        AlreadyRunning, match=rf"asyncarch up is already running \(pid {os.getpid()}"
    ):
        second.acquire(what="another")
    assert second.holder() == {
        "pid": os.getpid(),
        "what": "asyncarch up",
        "api": "http://127.0.0.1:1",
    }
    first.release()
    second.acquire(what="another")
    assert first.holder() is not None
    second.release()
    assert first.holder() is None


def test_a_busy_port_is_found_and_its_listener_named() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert busy_ports("127.0.0.1", [port, 0]) == [port]
        assert listens_on(os.getpid(), port)
        assert f"is already in use by pid {os.getpid()}" in str(
            port_taken("127.0.0.1", port, "API_PORT")
        )
    assert busy_ports("127.0.0.1", [port]) == []
    assert not listens_on(os.getpid(), port)


def test_metrics_count_restarts_per_service() -> None:
    metrics = SupervisorMetrics()
    metrics.restarts.labels("worker-1").inc()
    value = metrics.registry.get_sample_value(
        "asyncarch_supervisor_restarts_total", {"service": "worker-1"}
    )
    assert value == 1


class FakeProcess:
    """Just enough of Popen for the supervisor; records the signals it gets."""

    pids = iter(range(1000, 2000))

    def __init__(self, name: str, signals: list[tuple[str, int]]) -> None:
        self.name, self.signals = name, signals
        self.pid = next(self.pids)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, signum: int) -> None:
        self.signals.append((self.name, signum))
        self.returncode = -signum

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        return self.returncode


class FakeGroup(ServiceGroup):
    """A service group that starts fake processes."""

    def __init__(self) -> None:
        super().__init__(env={})
        self.signals: list[tuple[str, int]] = []

    def start(self, name: str, verb: str | None = None, **_: Any) -> Any:
        self.processes[name] = FakeProcess(name, self.signals)  # type: ignore[assignment]
        return self.processes[name]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [100.0]
    monkeypatch.setattr("asyncarch.supervisor.time.monotonic", lambda: now[0])
    return now


def supervised(policy: str = "on-failure") -> tuple[Supervisor, FakeGroup]:
    group = FakeGroup()
    rules = RestartRules(policy=policy, initial_s=1, max_s=30, reset_after_s=60)  # type: ignore[arg-type]
    return Supervisor(group, rules, SupervisorMetrics()), group


def test_a_failed_service_is_restarted_after_its_backoff(clock: list[float]) -> None:
    supervisor, group = supervised()
    supervisor.launch(Service("worker-1", stage=1, verb="worker"))
    first = group.processes["worker-1"]
    first.returncode = -signal.SIGKILL
    clock[0] += 5
    supervisor.tick()
    assert group.processes["worker-1"] is first, "restarted before its backoff"
    clock[0] += 1
    supervisor.tick()
    assert group.processes["worker-1"] is not first
    sample = supervisor.metrics.registry.get_sample_value
    assert sample("asyncarch_supervisor_restarts_total", {"service": "worker-1"}) == 1
    cause = {"service": "worker-1", "cause": "signal SIGKILL"}
    assert sample("asyncarch_supervisor_exits_total", cause) == 1
    group.processes["worker-1"].returncode = 1
    supervisor.tick()
    clock[0] += 1.5
    supervisor.tick()
    assert sample("asyncarch_supervisor_restarts_total", {"service": "worker-1"}) == 1, "2 s next"


@pytest.mark.parametrize(("policy", "restarted"), [("on-failure", False), ("always", True)])
def test_a_clean_exit_is_restarted_only_under_always(
    clock: list[float], policy: str, restarted: bool
) -> None:
    supervisor, group = supervised(policy)
    supervisor.launch(Service("api", stage=0, verb="api"))
    first = group.processes["api"]
    first.returncode = 0
    supervisor.tick()
    clock[0] += 1
    supervisor.tick()
    assert (group.processes["api"] is not first) is restarted


def test_stop_goes_api_then_workers_then_processor_then_broker(clock: list[float]) -> None:
    supervisor, group = supervised()
    for service in [
        Service("kafka", stage=3, argv=("java",)),
        Service("processor", stage=2),
        Service("worker-1", stage=1),
        Service("worker-2", stage=1),
        Service("api", stage=0),
    ]:
        supervisor.launch(service)
    supervisor.stop(timeout_s=1)
    assert [name for name, _ in group.signals] == [
        "api",
        "worker-1",
        "worker-2",
        "processor",
        "kafka",
    ]
    assert {signum for _, signum in group.signals} == {signal.SIGTERM}
