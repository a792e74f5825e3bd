"""The two stacks under test, each started fresh and always stopped.

``PipelineStack``: the Faust processor, N inference workers and the API as
subprocesses against a Kafka broker (an ephemeral one from ``kafka_broker``,
or the cluster ``KAFKA_BOOTSTRAP_SERVERS`` names) on a fresh topic set.
``CeleryStack``: the seed's design, Redis, a prefork Celery worker and Flask
behind gunicorn. Everything listens on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka.admin import AdminClient

from asyncarch.config import KafkaSettings
from asyncarch.kafka_admin import ensure_topics
from asyncarch.local_kafka import LocalKafka
from bench.procs import ProcessSet, free_port, wait_until
from schemas.topics import TopicSettings

__all__ = ["CeleryStack", "PipelineStack", "kafka_broker"]

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 180.0


@contextlib.contextmanager
def kafka_broker(work_dir: Path) -> Iterator[tuple[str, int | None]]:
    """Bootstrap servers and pid of an ephemeral local broker, or the servers that
    ``KAFKA_BOOTSTRAP_SERVERS`` names (pid None: not ours to measure)."""
    if servers := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield servers, None
        return
    broker = LocalKafka(state_dir=work_dir / "kafka", port=free_port(), controller_port=free_port())
    try:
        pid = broker.start()
        yield broker.bootstrap_servers, pid
    finally:
        broker.destroy()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class _StackProcesses:
    """What both stacks share: their processes start together and stop together."""

    processes: ProcessSet | None
    # Processes that compile code while they run (a JVM): the bench warms a stack up
    # until their CPU per task settles.
    jit_processes: tuple[str, ...] = ()

    def _launch(self, log_dir: Path, start: Callable[[], None]) -> None:
        """Run ``start`` with a ProcessSet in ``log_dir``; stop what it started if it fails."""
        self.processes = ProcessSet(log_dir)
        try:
            start()
        except BaseException:
            self.processes.stop()
            raise

    def __exit__(self, *_: object) -> None:
        if self.processes is not None:
            self.processes.stop()


@dataclass
class PipelineStack(_StackProcesses):
    """Processor, ``workers`` workers and the API on ``partitions``-partition topics."""

    bootstrap: str
    broker_pid: int | None
    workers: int
    partitions: int
    torch_threads: int
    work_dir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: ProcessSet | None = None
    base_url: str = ""

    jit_processes: tuple[str, ...] = ("kafka",)

    def __enter__(self) -> PipelineStack:
        log_dir = Path(tempfile.mkdtemp(prefix=f"pipeline-{self.tag}-", dir=self.work_dir))
        self._launch(log_dir, lambda: self._start(log_dir))
        return self

    @property
    def config(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "partitions": self.partitions,
            "torch_threads": self.torch_threads,
        }

    def pids(self) -> dict[str, int]:
        assert self.processes is not None
        pids = {name: p.pid for name, p in self.processes.processes.items()}
        return pids | ({"kafka": self.broker_pid} if self.broker_pid else {})

    def _start(self, log_dir: Path) -> None:
        assert self.processes is not None
        kafka = KafkaSettings(bootstrap_servers=self.bootstrap)
        topics = TopicSettings(prefix=f"bench-{self.tag}", partitions=self.partitions)
        ensure_topics(kafka, topics)
        api_port, web_port = free_port(), free_port()
        group = f"bench-workers-{self.tag}"
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "TOPIC_PREFIX": topics.prefix,
            "TOPIC_PARTITIONS": str(self.partitions),
            "WORKER_GROUP_ID": group,
            "WORKER_TORCH_THREADS": str(self.torch_threads),
            "WORKER_METRICS_PORT": "0",
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "API_PROCESSOR_URL": f"http://127.0.0.1:{web_port}",
            # The bench is one caller with many clients: the per-caller limit is not under test.
            "API_RATE_LIMIT_PER_S": "1000000",
            "API_RATE_LIMIT_BURST": "1000000",
            "PROCESSOR_APP_ID": f"bench-processor-{self.tag}",
            "PROCESSOR_WEB_HOST": "127.0.0.1",
            "PROCESSOR_WEB_PORT": str(web_port),
            "PROCESSOR_DATA_DIR": str(log_dir / "processor-data"),
            "BLOB_URL": (log_dir / "blobs").as_uri(),
            "PYTHONUNBUFFERED": "1",
        }
        cli = [sys.executable, "-m", "asyncarch.cli"]
        self.processes.start("processor", [*cli, "processor"], env)
        for i in range(1, self.workers + 1):
            # A stable id per slot: a stable transactional.id (see DESIGN.md).
            worker_env = {**env, "WORKER_WORKER_ID": f"bench-{self.tag}-{i}"}
            self.processes.start(f"worker-{i}", [*cli, "worker"], worker_env)
        self.processes.start("api", [*cli, "api"], env)
        self.base_url = f"http://127.0.0.1:{api_port}"
        processes = self.processes
        wait_until(
            lambda: processes.alive() and _ready(f"{self.base_url}/readyz"),
            START_TIMEOUT_S,
            "pipeline /readyz",
        )
        wait_until(
            lambda: processes.alive() and self._group_stable(kafka, group),
            START_TIMEOUT_S,
            f"{self.workers} workers in a stable group",
            interval_s=0.5,
        )

    def _group_stable(self, kafka: KafkaSettings, group: str) -> bool:
        """Every worker is a member of the group and the group is not rebalancing."""
        admin = AdminClient(kafka.librdkafka(log_level=2))
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=5)
        except Exception:  # the group does not exist until the first worker joins
            return False
        members = [m for m in description.members if m.assignment.topic_partitions]
        return str(description.state).endswith("STABLE") and len(members) == min(
            self.workers, self.partitions
        )


@dataclass
class CeleryStack(_StackProcesses):
    """Redis, ``concurrency`` prefork Celery children and Flask behind gunicorn."""

    concurrency: int
    web_workers: int
    web_threads: int
    torch_threads: int
    work_dir: Path
    processes: ProcessSet | None = None
    base_url: str = ""
    _log_dir: Path | None = None

    def __enter__(self) -> CeleryStack:
        redis = shutil.which("redis-server")
        if redis is None:
            raise RuntimeError("redis-server is not installed (make bench-deps installs it)")
        log_dir = self._log_dir = Path(tempfile.mkdtemp(prefix="celery-", dir=self.work_dir))
        self._launch(log_dir, lambda: self._start(redis, log_dir))
        return self

    @property
    def config(self) -> dict[str, Any]:
        return {
            "celery_pool": "prefork",
            "celery_concurrency": self.concurrency,
            "torch_threads_per_child": self.torch_threads,
            "gunicorn_workers": self.web_workers,
            "gunicorn_threads": self.web_threads,
        }

    def pids(self) -> dict[str, int]:
        assert self.processes is not None
        return {name: p.pid for name, p in self.processes.processes.items()}

    def _start(self, redis: str, log_dir: Path) -> None:
        assert self.processes is not None
        redis_port, web_port = free_port(), free_port()
        self.processes.start(
            "redis",
            [redis, "--bind", "127.0.0.1", "--port", str(redis_port), "--save", "",
             "--appendonly", "no", "--dir", str(log_dir)],
            dict(os.environ),
        )  # fmt: skip
        env = {
            **os.environ,
            "BENCH_REDIS_URL": f"redis://127.0.0.1:{redis_port}",
            "BENCH_TORCH_THREADS": str(self.torch_threads),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
            "PYTHONUNBUFFERED": "1",
        }
        self.processes.start(
            "celery",
            [sys.executable, "-m", "celery", "-A", "bench.celery_seed.tasks", "worker",
             "--pool", "prefork", "--concurrency", str(self.concurrency),
             "--loglevel", "WARNING", "--hostname", f"bench-{web_port}@%h"],
            env,
        )  # fmt: skip
        self.processes.start(
            "gunicorn",
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{web_port}",
             "--workers", str(self.web_workers), "--threads", str(self.web_threads),
             "--timeout", "0", "bench.celery_seed.app:app"],
            env,
        )  # fmt: skip
        self.base_url = f"http://127.0.0.1:{web_port}"
        processes = self.processes
        wait_until(
            lambda: processes.alive() and _ready(f"{self.base_url}/activedocuments/nexans/echo/"),
            START_TIMEOUT_S,
            "gunicorn echo/",
        )
