"""``asyncarch up``: a local broker plus one process per service, logs prefixed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics, wait_for_broker
from asyncarch.local_kafka import LocalKafka
from schemas.topics import TopicSettings

__all__ = ["ServiceGroup", "run_pipeline"]

SERVICES = ("processor", "worker", "api")
COLOURS = {"kafka": 35, "processor": 36, "worker": 33, "api": 32}


def _say(name: str, line: str) -> None:
    prefix = f"{name:>9} |"
    if sys.stdout.isatty():
        prefix = f"\033[{COLOURS.get(name, 37)}m{prefix}\033[0m"
    sys.stdout.write(f"{prefix} {line.rstrip()}\n")
    sys.stdout.flush()


@dataclass
class ServiceGroup:
    """Child processes, each running one ``asyncarch <service>`` verb."""

    env: dict[str, str]
    log_dir: Path | None = None
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def start(self, name: str, verb: str | None = None) -> subprocess.Popen[str]:
        """Start ``asyncarch <verb>`` as ``name``; output goes to ``log_dir`` or is
        printed with the name as prefix."""
        out = (self.log_dir / f"{name}.log").open("a") if self.log_dir else subprocess.PIPE
        process = subprocess.Popen(
            [sys.executable, "-m", "asyncarch.cli", verb or name],
            env=self.env,
            text=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes[name] = process
        if out is subprocess.PIPE:
            threading.Thread(target=self._relay, args=(name, process), daemon=True).start()
        return process

    def _relay(self, name: str, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            _say(name, line)

    def first_exited(self) -> str | None:
        """The name of a service that has exited, if any."""
        return next((n for n, p in self.processes.items() if p.poll() is not None), None)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM every service, newest first; SIGKILL what outlives ``timeout_s``."""
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_api(url: str, services: ServiceGroup, timeout_s: float = 180.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and services.first_exited() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def run_pipeline(api_url: str) -> int:
    """Start Kafka (unless KAFKA_BOOTSTRAP_SERVERS names one) and every service; block."""
    broker = None if "KAFKA_BOOTSTRAP_SERVERS" in os.environ else LocalKafka()
    if broker is not None:
        _say("kafka", f"starting Apache Kafka (KRaft) on {broker.bootstrap_servers}")
        broker.start()
    kafka = KafkaSettings()
    wait_for_broker(kafka)
    ensure_topics(kafka, TopicSettings())
    services = ServiceGroup(env=dict(os.environ))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for name in SERVICES:
            services.start(name)
        if _wait_for_api(api_url, services):
            _say("asyncarch", f"ready: {api_url}  (API docs: {api_url}/docs) — Ctrl-C stops all")
        while not stop.is_set() and (exited := services.first_exited()) is None:
            stop.wait(0.5)
        return 0 if stop.is_set() else _report_exit(exited)
    except KeyboardInterrupt:
        return 0
    finally:
        _say("asyncarch", "stopping services")
        services.stop()
        if broker is not None:
            broker.stop()
            _say("kafka", "stopped")


def _report_exit(name: str | None) -> int:
    _say("asyncarch", f"service {name} exited; stopping the rest")
    return 1
