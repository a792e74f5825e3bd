"""When to restart a crashed service, and the supervisor's Prometheus metrics.

Like systemd's ``Restart=on-failure`` with ``RestartSec`` growing: the first
restart waits ``initial_s``, each further one in a row doubles it up to
``max_s``; a service that stayed up ``reset_after_s`` starts over at
``initial_s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

__all__ = ["Backoff", "RestartPolicy", "SupervisorMetrics", "wants_restart"]

RestartPolicy = Literal["on-failure", "always", "no"]


def wants_restart(policy: RestartPolicy, returncode: int) -> bool:
    """Whether a service that exited with ``returncode`` (Popen's) is restarted."""
    if policy == "always":
        return True
    return policy == "on-failure" and returncode != 0


@dataclass
class Backoff:
    """Exponential restart delays for one service."""

    initial_s: float = 1.0
    max_s: float = 30.0
    reset_after_s: float = 60.0
    failures: int = 0

    def next_delay(self, uptime_s: float) -> float:
        """The wait before the next start, given how long the last run lasted."""
        if uptime_s >= self.reset_after_s:
            self.failures = 0
        delay = min(self.max_s, self.initial_s * 2.0**self.failures)
        self.failures += 1
        return delay


class SupervisorMetrics:
    """Restarts, exits and liveness of each supervised service (own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.restarts = Counter(
            "asyncarch_supervisor_restarts",
            "Services restarted by the supervisor after an exit",
            ["service"],
            registry=self.registry,
        )
        self.exits = Counter(
            "asyncarch_supervisor_exits",
            "Services that exited while the supervisor did not stop them, by cause",
            ["service", "cause"],
            registry=self.registry,
        )
        self.up = Gauge(
            "asyncarch_supervisor_service_up",
            "1 while the service's process runs",
            ["service"],
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a daemon thread (0: don't)."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
