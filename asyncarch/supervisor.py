"""Child services that are restarted when they crash and stopped in order.

``ServiceGroup`` starts ``asyncarch <verb>`` children (tied to this process:
see ``asyncarch.process``) with their output prefixed or logged to files. Relayed
children write JSON log lines; on a terminal (or with ``LOG_FORMAT=text``) each
is printed as a human line (``asyncarch.logs.render_line``).
``Supervisor`` watches a group: a service that fails is restarted after an
exponential backoff, and ``stop`` takes the services down stage by stage
(API first, broker last), SIGTERM then SIGKILL.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from asyncarch.logs import log_format, render_line
from asyncarch.process import describe_exit, spawn, terminate
from asyncarch.restarts import Backoff, RestartPolicy, SupervisorMetrics, wants_restart

__all__ = ["Service", "ServiceGroup", "Supervisor", "say"]

COLOURS = {"kafka": 35, "processor": 36, "worker": 33, "api": 32}


def say(name: str, line: str) -> None:
    """Print ``line`` prefixed with ``name`` (coloured on a terminal)."""
    prefix = f"{name:>9} |"
    if sys.stdout.isatty():
        prefix = f"\033[{COLOURS.get(name.split('-')[0], 37)}m{prefix}\033[0m"
    try:
        sys.stdout.write(f"{prefix} {line.rstrip()}\n")
        sys.stdout.flush()
    except (OSError, ValueError, RuntimeError):  # closed terminal, or re-entered by a signal
        pass


@dataclass
class ServiceGroup:
    """Child processes, each running one ``asyncarch <service>`` verb (or any command)."""

    env: dict[str, str]
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(
        self,
        name: str,
        verb: str | None = None,
        *,
        argv: Iterable[str] = (),
        env: dict[str, str] | None = None,
        pass_fds: Iterable[int] = (),
    ) -> subprocess.Popen[str]:
        """Start ``asyncarch <verb>`` (or ``argv``) as ``name``, with ``env`` added.

        Output goes to ``log_dir/<name>.log`` or is printed with the name as prefix.
        """
        command = list(argv) or [sys.executable, "-m", "asyncarch.cli", verb or name]
        out = (self.log_dir / f"{name}.log").open("a") if self.log_dir else None
        env = {**self.env, **(env or {})}
        as_text = out is None and log_format(sys.stdout) == "text"
        if out is None:  # the relay renders JSON lines for people, so it gets JSON lines
            env["LOG_FORMAT"] = "json"
        process = spawn(
            command,
            env=env,
            stdout=out or subprocess.PIPE,
            pass_fds=pass_fds,
        )
        if out is not None:
            out.close()  # the child has its own copy
        else:
            relay = threading.Thread(target=self._relay, args=(name, process, as_text), daemon=True)
            relay.start()
        self.processes[name] = process
        return process

    def _relay(self, name: str, process: subprocess.Popen[str], as_text: bool) -> None:
        assert process.stdout is not None
        colour = as_text and sys.stdout.isatty()
        for line in process.stdout:
            if not as_text:
                say(name, line)
                continue
            for part in render_line(line.rstrip("\n"), colour).splitlines() or [""]:
                say(name, part)

    def first_exited(self) -> str | None:
        """The name of a service that has exited, if any."""
        return next((n for n, p in self.processes.items() if p.poll() is not None), None)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every service, newest first; SIGKILL what outlives ``timeout_s``."""
        terminate(reversed(list(self.processes.values())), timeout_s)


@dataclass(frozen=True)
class Service:
    """One supervised service: what to run and when it stops relative to the others."""

    name: str
    stage: int  # stop order: lower stages stop first
    verb: str | None = None
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    pass_fds: tuple[int, ...] = ()


@dataclass(frozen=True)
class RestartRules:
    """How the supervisor restarts (see ``asyncarch.restarts``)."""

    policy: RestartPolicy = "on-failure"
    initial_s: float = 1.0
    max_s: float = 30.0
    reset_after_s: float = 60.0


class Supervisor:
    """Runs services, restarts failed ones with backoff, and stops them in stages."""

    def __init__(
        self,
        group: ServiceGroup,
        rules: RestartRules,
        metrics: SupervisorMetrics,
        on_start: Callable[[Service, int], None] | None = None,
    ) -> None:
        self.group = group
        self.rules = rules
        self.metrics = metrics
        self.on_start = on_start
        self.services: dict[str, Service] = {}
        self._backoff: dict[str, Backoff] = {}
        self._started_at: dict[str, float] = {}
        self._due: dict[str, float] = {}

    def launch(self, service: Service) -> None:
        """Start ``service`` now and supervise it from then on."""
        self.services[service.name] = service
        self._backoff.setdefault(
            service.name,
            Backoff(self.rules.initial_s, self.rules.max_s, self.rules.reset_after_s),
        )
        process = self.group.start(
            service.name,
            service.verb,
            argv=service.argv,
            env=service.env,
            pass_fds=service.pass_fds,
        )
        self._started_at[service.name] = time.monotonic()
        self.metrics.up.labels(service.name).set(1)
        say("asyncarch", f"started {service.name} (pid {process.pid})")
        if self.on_start is not None:
            self.on_start(service, process.pid)

    def tick(self) -> None:
        """Notice exits and start the services whose restart is due."""
        now = time.monotonic()
        for name, process in list(self.group.processes.items()):
            if name in self.services and name not in self._due and process.poll() is not None:
                self._exited(name, process.returncode, now)
        for name, due in list(self._due.items()):
            if now >= due:
                del self._due[name]
                self.metrics.restarts.labels(name).inc()
                self.launch(self.services[name])

    def _exited(self, name: str, returncode: int, now: float) -> None:
        cause = describe_exit(returncode)
        uptime = now - self._started_at[name]
        self.metrics.up.labels(name).set(0)
        self.metrics.exits.labels(name, cause).inc()
        if not wants_restart(self.rules.policy, returncode):
            say("asyncarch", f"{name} exited ({cause}) after {uptime:.1f}s; not restarted")
            del self.services[name]
            return
        delay = self._backoff[name].next_delay(uptime)
        self._due[name] = now + delay
        say("asyncarch", f"{name} exited ({cause}) after {uptime:.1f}s; restarting in {delay:g}s")

    def running(self, name: str) -> subprocess.Popen[str] | None:
        """The live process of ``name``, if it runs."""
        process = self.group.processes.get(name)
        return process if process is not None and process.poll() is None else None

    def stop(self, timeout_s: float) -> None:
        """Stop every service stage by stage: SIGTERM, then SIGKILL after ``timeout_s``."""
        self._due.clear()
        stages = sorted({s.stage for s in self.services.values()})
        unsupervised = [n for n in self.group.processes if n not in self.services]
        for stage in stages:
            names = [n for n, s in self.services.items() if s.stage == stage]
            self._stop_names(names, timeout_s)
        self._stop_names(unsupervised, timeout_s)

    def kill_all(self) -> None:
        """SIGKILL every live service at once (a second Ctrl-C)."""
        self._due.clear()
        for process in self.group.processes.values():
            if process.poll() is None:
                process.kill()

    def _stop_names(self, names: list[str], timeout_s: float) -> None:
        processes = [self.group.processes[n] for n in names if n in self.group.processes]
        if any(p.poll() is None for p in processes):
            say("asyncarch", f"stopping {', '.join(names)}")
        terminate(processes, timeout_s)
        for name in names:
            self.metrics.up.labels(name).set(0)
