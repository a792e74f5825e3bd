"""A whole pipeline on its own broker, whose every process a test may SIGKILL.

The broker is this module's own (not the integration tests' session broker),
so killing it harms no other test. Workers run in numbered slots: a worker
restarted in a slot keeps the slot's ``WORKER_WORKER_ID`` (its
``transactional.id``) and ``WORKER_GROUP_INSTANCE_ID`` (static membership).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.integration.conftest import free_port, service_env

__all__ = ["ChaosPipeline", "ExtraApi", "rss_bytes"]

PARTITIONS = 3


def rss_bytes(pid: int) -> int:
    """Resident set size of a process, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


@dataclass
class ExtraApi:
    """A second API process with its own settings, in front of the same pipeline."""

    services: ServiceGroup
    port: int

    @property
    def pid(self) -> int:
        return self.services.processes["api-extra"].pid

    def stop(self) -> None:
        self.services.stop()


@dataclass
class ChaosPipeline:
    """Broker, Faust processor, API and ``workers`` worker slots."""

    root: Path
    workers: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.broker = LocalKafka(
            state_dir=self.root / "kafka", port=free_port(), controller_port=free_port()
        )
        self.kafka = KafkaSettings(bootstrap_servers=self.broker.bootstrap_servers)
        tag = uuid.uuid4().hex[:10]
        self.topics = TopicSettings(prefix=f"chaos-{tag}", partitions=PARTITIONS)
        self.api_port, self.web_port = free_port(), free_port()
        self.log_dir = self.root / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = service_env(
            self.kafka,
            self.topics,
            tag,
            API_PORT=str(self.api_port),
            API_PROCESSOR_URL=f"http://127.0.0.1:{self.web_port}",
            API_RATE_LIMIT_PER_S="100000",
            API_RATE_LIMIT_BURST="100000",
            PROCESSOR_WEB_PORT=str(self.web_port),
            PROCESSOR_DATA_DIR=str(self.root / "processor-data"),
            BLOB_URL=(self.root / "blobs").as_uri(),
            WORKER_MAX_BATCH="16",
            **self.extra_env,
        )
        self.services = ServiceGroup(env=env, log_dir=self.log_dir)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def processor_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def worker_names(self) -> list[str]:
        return [f"worker-{slot}" for slot in range(self.workers)]

    def start(self) -> None:
        """Broker, topics, then every service; returns once the API is ready."""
        self.broker.start()
        ensure_topics(self.kafka, self.topics)
        self.start_service("processor")
        for name in self.worker_names:
            self.start_service(name)
        self.start_service("api")
        self.wait_ready()

    def start_service(self, name: str) -> subprocess.Popen[str]:
        """Start (or restart) a service; a worker slot keeps its ids across restarts."""
        if not name.startswith("worker-"):
            return self.services.start(name)
        slot_id = f"{self.topics.prefix}-{name}"
        self.services.env.update(WORKER_WORKER_ID=slot_id, WORKER_GROUP_INSTANCE_ID=slot_id)
        self.services.env["WORKER_METRICS_PORT"] = str(free_port())
        return self.services.start(name, "worker")

    def extra_api(self, **env: str) -> ExtraApi:
        """Start another API with ``env`` on a port of its own; returns once it is ready."""
        port = free_port()
        group = ServiceGroup(
            env={**self.services.env, "API_PORT": str(port), **env}, log_dir=self.log_dir
        )
        group.start("api-extra", "api")
        api = ExtraApi(group, port)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    return api
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        api.stop()
        raise AssertionError(f"extra API not ready\n{self.logs()}")

    def kill(self, name: str) -> None:
        """SIGKILL a service and reap it."""
        process = self.services.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def kill_broker(self) -> None:
        """SIGKILL the broker (its data stays; ``broker.start()`` brings it back)."""
        pid = self.broker.running_pid()
        assert pid is not None, "broker is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.broker.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    def exited(self) -> dict[str, int]:
        """Services that are not running, with their exit codes."""
        return {
            name: code
            for name, process in self.services.processes.items()
            if (code := process.poll()) is not None
        }

    def pids(self) -> dict[str, int]:
        running = {n: p.pid for n, p in self.services.processes.items() if p.poll() is None}
        if (broker := self.broker.running_pid()) is not None:
            running["kafka"] = broker
        return running

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def processor_ready(self) -> bool:
        try:
            return httpx.get(f"{self.processor_url}/health/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 180.0) -> float:
        """Seconds until the API is ready; fails with the logs if it never gets there."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.ready():
                return time.monotonic() - started
            time.sleep(0.3)
        raise AssertionError(f"pipeline not ready within {timeout_s}s\n{self.logs()}")

    def heal(self) -> list[str]:
        """Restart whatever is not running (broker included); returns what was restarted."""
        restarted = []
        if self.broker.running_pid() is None:
            self.broker.start()
            restarted.append("kafka")
        for name in self.exited():
            self.start_service(name)
            restarted.append(name)
        return restarted

    def stop(self) -> None:
        try:
            self.services.stop()
        finally:
            self.broker.destroy()

    def metric(self, url: str, name: str) -> float | None:
        """One sample of a Prometheus metric served at ``url``."""
        try:
            text = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            return None
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def logs(self, chars: int = 3000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
            for p in sorted(self.log_dir.glob("*.log"))
        )
