"""A real single-node Apache Kafka broker (KRaft), provisioned from Maven Central.

``mvn`` resolves the broker's jars from ``deploy/kafka/pom.xml`` into a cache
outside the repository (``$ASYNCARCH_CACHE``, default ``~/.cache/asyncarch``);
the broker then runs with the installed Java as one combined broker+controller
node. Data is kept across restarts unless the broker is ephemeral.

One broker per data folder: ``broker.lock`` is an flock that the broker
process itself holds (and the ``asyncarch up`` that started it), so a second
start finds the running one and names its pid, and the claim ends with the
broker. A broker started by ``asyncarch up`` dies with it; one started by
``asyncarch kafka up`` is a daemon that ``asyncarch kafka down`` stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from base64 import urlsafe_b64encode
from dataclasses import dataclass, field
from pathlib import Path

from asyncarch.config import KafkaSettings
from asyncarch.exceptions import AsyncarchError
from asyncarch.kafka_admin import wait_for_broker
from asyncarch.ownership import AlreadyRunning, OwnerLock, busy_ports, port_taken
from asyncarch.paths import cache_root
from asyncarch.process import alive, spawn

__all__ = ["LocalKafka", "LocalKafkaError", "cache_root", "java_executable"]

log = logging.getLogger(__name__)

POM = Path(__file__).resolve().parents[1] / "deploy" / "kafka" / "pom.xml"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=6
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
"""

LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class LocalKafkaError(AsyncarchError):
    """The local broker could not be provisioned, started or stopped."""


@dataclass(frozen=True)
class LocalKafka:
    """One KRaft broker+controller node listening on loopback."""

    state_dir: Path = field(default_factory=lambda: cache_root() / "kafka-node")
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "512m"
    log_level: str = "WARN"
    _lock: OwnerLock = field(init=False, repr=False, compare=False)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of the broker's client listener."""
        return f"{self.host}:{self.port}"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lock", OwnerLock(self.state_dir / "broker.lock"))

    @property
    def log_file(self) -> Path:
        return self.state_dir / "broker.log"

    def libs(self) -> Path:
        """The broker's jars, resolved with ``mvn`` once per pom version and cached."""
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
        libs = cache_root() / "kafka-dist" / digest / "libs"
        if (libs / ".complete").exists():
            return libs
        if shutil.which("mvn") is None:
            raise LocalKafkaError("mvn is not installed: Maven is needed to provision Kafka")
        log.info("resolving Apache Kafka jars with mvn", extra={"into": str(libs)})
        libs.mkdir(parents=True, exist_ok=True)
        command = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
            "-DincludeScope=runtime",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalKafkaError(f"mvn could not resolve Kafka:\n{done.stdout}\n{done.stderr}")
        (libs / ".complete").touch()
        return libs

    def claim(self, owner_pid: int | None) -> None:
        """Take the data folder and ports, or raise AlreadyRunning naming their holder.

        ``owner_pid`` is the process that will stop the broker (None: a daemon
        that ``asyncarch kafka down`` stops).
        """
        try:
            self._lock.acquire(
                what=f"a Kafka broker on {self.bootstrap_servers} (data {self.state_dir})",
                owner_pid=owner_pid,
            )
        except AlreadyRunning as exc:
            if (self._lock.holder() or {}).get("owner_pid") is None:  # a `kafka up` daemon
                raise AlreadyRunning(
                    f"{exc}: stop it with `asyncarch kafka down`, or use it "
                    f"(KAFKA_BOOTSTRAP_SERVERS={self.bootstrap_servers})"
                ) from None
            raise
        if busy := busy_ports(self.host, (self.port, self.controller_port)):
            self._lock.release()
            raise port_taken(self.host, busy[0], "the Kafka broker's")

    def command(self) -> list[str]:
        """The broker's command line, after provisioning jars and formatting storage."""
        libs = self.libs()
        config = self._write_config()
        self._format_storage(libs, config)
        return self._java(libs, "kafka.Kafka", str(config))

    def record(self, pid: int, owner_pid: int | None) -> None:
        """Note the running broker's pid beside the claim (its holder keeps the lock)."""
        self._lock.record(
            what=f"a Kafka broker on {self.bootstrap_servers} (data {self.state_dir})",
            pid=pid,
            owner_pid=owner_pid,
        )

    @property
    def lock_fd(self) -> int:
        """The claim's descriptor: pass it to the broker so the claim lives as long."""
        return self._lock.fileno()

    def release(self) -> None:
        """Drop this process's hold on the claim."""
        self._lock.release()

    def start(self, wait_s: float = 90.0, detach: bool = False) -> int:
        """Start the broker and wait until it answers; raise AlreadyRunning if one runs.

        A ``detach``-ed broker outlives this process (``asyncarch kafka up``);
        otherwise it dies with the calling thread.
        """
        owner_pid = None if detach else os.getpid()
        self.claim(owner_pid)
        try:
            argv = self.command()
            with self.log_file.open("ab") as out:
                process = spawn(argv, stdout=out, tied=not detach, pass_fds=[self.lock_fd])
            self.record(process.pid, owner_pid)
        finally:
            self.release()  # the broker holds the claim from now on
        try:
            wait_for_broker(KafkaSettings(bootstrap_servers=self.bootstrap_servers), wait_s)
        except AsyncarchError as exc:
            tail = self.log_file.read_text(errors="replace")[-3000:]
            self.stop()
            raise LocalKafkaError(f"broker did not start: {exc}\n{tail}") from exc
        return process.pid

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker (SIGTERM, then SIGKILL after ``timeout_s``); False if none ran.

        Refuses a broker that a live ``asyncarch up`` (another process) started.
        """
        info = self._lock.holder()
        if info is None or "pid" not in info:
            return False
        owner = info.get("owner_pid")
        if owner not in (None, os.getpid()) and alive(owner):
            raise LocalKafkaError(
                f"the broker in {self.state_dir} (pid {info['pid']}) belongs to process {owner} "
                "(asyncarch up): stop that one instead"
            )
        _signal(info["pid"], signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while self._lock.holder() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._lock.holder() is not None:
            _signal(info["pid"], signal.SIGKILL)
        return True

    def running_pid(self) -> int | None:
        """The broker's pid while one runs from this data folder."""
        info = self._lock.holder()
        return int(info["pid"]) if info and "pid" in info else None

    def destroy(self) -> None:
        """Stop the broker and delete its data (for ephemeral brokers)."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def _write_config(self) -> Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "server.properties"
        config.write_text(
            SERVER_PROPERTIES.format(
                host=self.host,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.state_dir / "data",
            )
        )
        (self.state_dir / "log4j2.properties").write_text(
            LOG4J2_PROPERTIES.format(level=self.log_level)
        )
        return config

    def _format_storage(self, libs: Path, config: Path) -> None:
        if (self.state_dir / "data" / "meta.properties").exists():
            return
        cluster_id = urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        command = self._java(
            libs,
            "kafka.tools.StorageTool",
            "format",
            # One argument with "=": an id is URL-safe base64, and one in 64 starts
            # with "-", which the tool's parser would take for an option.
            f"--cluster-id={cluster_id}",
            "-c",
            str(config),
            "--ignore-formatted",
        )
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LocalKafkaError(f"kafka storage format failed:\n{done.stdout}\n{done.stderr}")

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        return [
            java_executable(),
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-XX:ActiveProcessorCount=2",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.state_dir / 'log4j2.properties'}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]


def java_executable() -> str:
    """The ``java`` of ``$JAVA_HOME``, else the one on the PATH (17 or newer)."""
    java = (
        shutil.which("java", path=str(Path(os.environ["JAVA_HOME"]) / "bin"))
        if os.environ.get("JAVA_HOME")
        else shutil.which("java")
    )
    if java is None:
        raise LocalKafkaError("java is not installed: Kafka needs Java 17 or newer")
    return java


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
