"""Child processes in their own process groups, and their memory, sampled.

Every service the bench starts runs in a new session, so stopping it kills the
whole group (gunicorn's and Celery's prefork children included) and nothing
outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

__all__ = [
    "HostCpu",
    "ProcessSet",
    "RssSampler",
    "cpu_seconds",
    "free_port",
    "host_cpu",
    "settled",
    "settled_twice",
    "wait_until",
]


@dataclass(frozen=True)
class HostCpu:
    """The whole host's CPU seconds so far (all cores): busy, idle, and stolen by the
    hypervisor for other guests."""

    busy: float
    idle: float
    steal: float

    def since(self, before: HostCpu) -> dict[str, float]:
        """Cores busy, idle and stolen on average between ``before`` and this reading:
        a stack that keeps every core busy is limited by its CPU per task, one that
        leaves cores idle by something else (a wait, a bubble between stages)."""
        seconds = (self.busy + self.idle + self.steal) - (before.busy + before.idle + before.steal)
        cores = os.cpu_count() or 1
        if seconds <= 0:
            return {"cores": cores, "busy_cores": 0.0, "idle_cores": 0.0, "stolen_cores": 0.0}
        per_core = seconds / cores
        return {
            "cores": cores,
            "busy_cores": round((self.busy - before.busy) / per_core, 2),
            "idle_cores": round((self.idle - before.idle) / per_core, 2),
            "stolen_cores": round((self.steal - before.steal) / per_core, 2),
        }


def host_cpu() -> HostCpu:
    """The host's CPU times now (``/proc/stat`` through psutil)."""
    times = psutil.cpu_times()
    steal = getattr(times, "steal", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    # Linux counts a guest's time in user time too; psutil lists it again apart.
    guest = getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    busy = sum(times) - idle - steal - guest
    return HostCpu(busy, idle, steal)


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.3
) -> None:
    """Call ``condition()`` until it is true; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not within {timeout_s:.0f}s")


@dataclass
class ProcessSet:
    """Named child processes, each the leader of its own process group."""

    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        """Start ``argv`` as ``name``; its output goes to ``<log_dir>/<name>.log``."""
        with (self.log_dir / f"{name}.log").open("ab") as out:
            self.processes[name] = subprocess.Popen(
                list(argv),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def first_exited(self) -> str | None:
        """The name of a process that has already exited, if any."""
        return next((n for n, p in self.processes.items() if p.poll() is not None), None)

    def alive(self) -> bool:
        """True while every process runs; raises with the log's tail when one has died."""
        if (name := self.first_exited()) is not None:
            raise RuntimeError(f"{name} exited early:\n{self.log_tail(name)}")
        return True

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM every group, newest first; SIGKILL the groups that outlive ``timeout_s``."""
        for process in reversed(list(self.processes.values())):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            # The leader may be gone while its children (prefork) still run.
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


class RssSampler:
    """Samples, in a thread, the resident memory of each named process tree.

    A tree is the process and its descendants (gunicorn or Celery with their
    children); ``peaks()`` gives, per name, the highest sum seen and the
    process count at that moment.
    """

    def __init__(self, pids: dict[str, int], interval_s: float = 0.5) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self._peaks: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        for name, pid in self.pids.items():
            rss, count = _tree_rss(pid)
            if rss > self._peaks.get(name, (0, 0))[0]:
                self._peaks[name] = (rss, count)

    def peaks(self) -> dict[str, dict[str, float]]:
        """``{name: {"peak_rss_mib": ..., "processes": ...}}``."""
        return {
            name: {"peak_rss_mib": round(rss / 2**20, 1), "processes": count}
            for name, (rss, count) in self._peaks.items()
        }


def _tree_rss(pid: int) -> tuple[int, int]:
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = 0
    for process in tree:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total, len(tree)


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) each named process tree has used so far."""
    used = {}
    for name, pid in pids.items():
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        total = 0.0
        for process in tree:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        used[name] = total
    return used


def settled(
    before: dict[str, float], after: dict[str, float], relative: float = 0.10, ms: float = 0.25
) -> bool:
    """Whether every process's CPU ms per task changed by at most ``relative`` of
    itself (or ``ms``, for the small ones) from one warm-up round to the next."""
    return all(
        abs(after[name] - cost) <= max(relative * cost, ms)
        for name, cost in before.items()
        if name in after
    )


def settled_twice(rounds: list[dict[str, float]], watched: set[str]) -> bool:
    """Whether the ``watched`` processes' CPU per task settled in each of the last two
    warm-up rounds (a JIT compiles in spurts: one quiet round is not the end of it)."""
    costs = [{k: v for k, v in r.items() if k in watched} for r in rounds[-3:]]
    return len(costs) == 3 and settled(costs[0], costs[1]) and settled(costs[1], costs[2])
