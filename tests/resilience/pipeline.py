"""A whole pipeline on its own broker, whose every process a test may SIGKILL.

The broker is this module's own (not the integration tests' session broker),
so killing it harms no other test. Workers run in numbered slots: a worker
restarted in a slot keeps the slot's ``WORKER_WORKER_ID`` (its
``transactional.id``) and ``WORKER_GROUP_INSTANCE_ID`` (static membership).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.helpers import eventually
from tests.stack import free_port, service_env

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
        self._log_offsets: dict[str, int] = {}

    def note(self, what: str) -> None:
        """A line in ``chaos.log`` beside the services' logs: what the test did, when."""
        stamp = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        with (self.log_dir / "chaos.log").open("a") as log:
            log.write(f"{stamp} {what}\n")

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
        self.wait_processing()

    def start_service(self, name: str) -> subprocess.Popen[str]:
        """Start (or restart) a service; a worker slot keeps its ids across restarts."""
        log = self.log_dir / f"{name}.log"
        self._log_offsets[name] = log.stat().st_size if log.exists() else 0
        if not name.startswith("worker-"):
            process = self.services.start(name)
        else:
            slot_id = f"{self.topics.prefix}-{name}"
            slot_env = {
                "WORKER_WORKER_ID": slot_id,
                "WORKER_GROUP_INSTANCE_ID": slot_id,
                "WORKER_METRICS_PORT": str(free_port()),
            }
            process = self.services.start(name, "worker", env=slot_env)
        self.note(f"started {name} pid {process.pid}")
        return process

    def assignment(self, name: str) -> set[int]:
        """The partitions a worker owns since its latest start, from its log (its
        "partitions assigned" and "partitions revoked" lines, which are
        incremental under cooperative rebalancing)."""
        owned: set[int] = set()
        with (self.log_dir / f"{name}.log").open(errors="replace") as lines:
            lines.seek(self._log_offsets.get(name, 0))
            for line in lines:
                if '"partitions assigned"' not in line and '"partitions revoked"' not in line:
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("msg") == "partitions assigned":
                    owned |= set(record.get("partitions") or ())
                elif record.get("msg") == "partitions revoked":
                    owned -= set(record.get("partitions") or ())
        return owned

    def wait_processing(self, timeout_s: float = 180.0) -> None:
        """Until every worker consumes and together they own every partition."""

        def all_consuming() -> bool:
            owned = [self.assignment(name) for name in self.worker_names]
            return all(owned) and set().union(*owned) == set(range(PARTITIONS))

        self._eventually(all_consuming, timeout_s, "workers all consuming")

    def extra_api(self, **env: str) -> ExtraApi:
        """Start another API with ``env`` on a port of its own; returns once it is ready."""
        port = free_port()
        group = ServiceGroup(
            env={**self.services.env, "API_PORT": str(port), **env}, log_dir=self.log_dir
        )
        group.start("api-extra", "api")
        api = ExtraApi(group, port)

        def ready() -> bool:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200

        try:
            self._eventually(ready, 120, "extra API ready")
        except AssertionError:
            api.stop()
            raise
        return api

    def kill(self, name: str) -> None:
        """SIGKILL a service and reap it."""
        process = self.services.processes[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        self.note(f"SIGKILLed {name} pid {process.pid}")

    def kill_broker(self) -> None:
        """SIGKILL the broker (its data stays; ``broker.start()`` brings it back)."""
        pid = self.broker.running_pid()
        assert pid is not None, "broker is not running"
        os.kill(pid, signal.SIGKILL)
        self.note(f"SIGKILLed the broker pid {pid}")
        deadline = time.monotonic() + 10
        while self.broker.running_pid() is not None and time.monotonic() < deadline:
            time.sleep(0.1)

    def start_broker(self) -> None:
        """Start the broker again on the same ports and data."""
        self.broker.start()
        self.note("started the broker")

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

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        """Until the API is ready; fails with the logs if it never gets there."""
        self._eventually(self.ready, timeout_s, "pipeline ready")

    def _eventually(self, condition: Callable[[], object], timeout_s: float, what: str) -> None:
        """``eventually`` every 0.3 s, with the services' logs when time runs out."""
        try:
            eventually(condition, timeout_s, what, 0.3, (httpx.HTTPError,))
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from exc

    def heal(self) -> list[str]:
        """Restart whatever is not running (broker included); returns what was restarted."""
        restarted = []
        if self.broker.running_pid() is None:
            self.start_broker()
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
