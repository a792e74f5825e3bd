"""``asyncarch up``: a local broker, a schema registry and every service, supervised.

The local Kafka broker starts unless ``KAFKA_BOOTSTRAP_SERVERS`` names a
cluster; the local schema registry (Apicurio, ``asyncarch.local_registry``)
starts unless ``SCHEMA_REGISTRY_URL`` names one or
``SUPERVISOR_REGISTRY_ENABLED=false``, and every service is given its URL.

One run owns what it started and only that. It claims the cache folder
(``up.lock``) and checks every port it needs before it starts anything, so a
second ``asyncarch up`` beside a running one exits at once naming the first.
A crashed service is restarted with backoff; Ctrl-C, SIGTERM or SIGHUP (a
closed terminal) stop everything: API, workers, processor, then the broker.
If the supervisor itself dies, even by SIGKILL, the kernel kills its children.
"""

from __future__ import annotations

import os
import signal
import ssl
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from types import FrameType

import httpx
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from asyncarch.config import KafkaSettings
from asyncarch.exceptions import AsyncarchError
from asyncarch.kafka_admin import BrokerUnavailable, ensure_topics, wait_for_broker
from asyncarch.local_kafka import LocalKafka, cache_root
from asyncarch.local_registry import LocalRegistry, LocalRegistryError
from asyncarch.ownership import AlreadyRunning, OwnerLock, busy_ports, port_taken
from asyncarch.process import listens_on
from asyncarch.restarts import RestartPolicy, SupervisorMetrics
from asyncarch.supervisor import RestartRules, Service, ServiceGroup, Supervisor, say
from inference_consumer.config import WorkerSettings
from producer_api.core.config import ApiSettings
from producer_api.tls import TlsConfigError, tls_options
from schemas.topics import TopicSettings
from stream_processors.config import ProcessorSettings

__all__ = ["SupervisorSettings", "api_probe_verify", "run_up"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
API, WORKERS, PROCESSOR, REGISTRY, BROKER = range(5)  # stop stages, in order


class SupervisorSettings(BaseSettings):
    """How ``asyncarch up`` runs the stack; env prefix ``SUPERVISOR_``."""

    model_config = SettingsConfigDict(
        env_prefix="SUPERVISOR_", frozen=True, env_file=".env", extra="ignore"
    )

    workers: int = Field(default=1, ge=1)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0)  # 0: no /metrics
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"
    restart: RestartPolicy = "on-failure"
    restart_initial_s: float = Field(default=1.0, gt=0)
    restart_max_s: float = Field(default=30.0, gt=0)
    restart_reset_s: float = Field(default=60.0, gt=0)
    stop_timeout_s: float = Field(default=10.0, gt=0)
    kafka_wait_s: float = Field(default=120.0, gt=0)
    registry_enabled: bool = True
    registry_port: int = 8081
    registry_heap: str = "256m"
    registry_wait_s: float = Field(default=120.0, gt=0)

    def rules(self) -> RestartRules:
        """The restart rules these settings describe."""
        return RestartRules(
            self.restart, self.restart_initial_s, self.restart_max_s, self.restart_reset_s
        )


def worker_slot_env(slot: int, metrics_port: int) -> dict[str, str]:
    """A worker slot's stable identity (transactional id, static membership) and port."""
    env = {"WORKER_WORKER_ID": f"worker-{slot}", "WORKER_GROUP_INSTANCE_ID": f"worker-{slot}"}
    if metrics_port:
        env["WORKER_METRICS_PORT"] = str(metrics_port + slot - 1)
    return env


def _stack(settings: SupervisorSettings) -> list[Service]:
    """The services in start order (the broker is added separately)."""
    metrics_port = WorkerSettings().metrics_port
    workers = [
        Service(f"worker-{n}", WORKERS, "worker", env=worker_slot_env(n, metrics_port))
        for n in range(1, settings.workers + 1)
    ]
    return [Service("processor", PROCESSOR, "processor"), *workers, Service("api", API, "api")]


def api_probe_verify(api: ApiSettings) -> ssl.SSLContext | bool:
    """How the readiness probe checks the API's certificate: against that certificate.

    The configured certificate is the probe's only CA, so a self-signed one verifies
    and another server on the port does not; partial chains are accepted so a CA-signed
    leaf (or full chain) works too. The probe dials the address the API binds
    (127.0.0.1 for 0.0.0.0), which the certificate need not name, so host names are
    not checked: ``listens_on`` already ties the port to the child we started.
    """
    if not api.ssl_certfile:
        return True
    context = ssl.create_default_context(cafile=api.ssl_certfile)
    context.check_hostname = False
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def _check_ports(settings: SupervisorSettings) -> None:
    api, processor, worker = ApiSettings(), ProcessorSettings(), WorkerSettings()
    wanted = [
        (api.host, api.port, "API_PORT"),
        (processor.web_host, processor.web_port, "PROCESSOR_WEB_PORT"),
        (settings.metrics_host, settings.metrics_port, "SUPERVISOR_METRICS_PORT"),
        *[
            (worker.metrics_host, worker.metrics_port + n, "WORKER_METRICS_PORT")
            for n in range(settings.workers)
            if worker.metrics_port
        ],
    ]
    for host, port, variable in wanted:
        if busy_ports(host, [port]):
            raise port_taken(host, port, variable)


@dataclass(frozen=True)
class ApiTls:
    """``asyncarch up --ssl-certfile/--ssl-keyfile``: the API's certificate and key."""

    certfile: str | None = None
    keyfile: str | None = None

    def fields(self) -> dict[str, str]:
        """The ``ApiSettings`` fields of the given files, as absolute paths."""
        given = {"ssl_certfile": self.certfile, "ssl_keyfile": self.keyfile}
        return {name: os.path.abspath(path) for name, path in given.items() if path}


class Up:
    """One run of the stack: claims, broker, services, the watch loop and the stop."""

    def __init__(self, settings: SupervisorSettings, api_tls: ApiTls | None = None) -> None:
        self.settings = settings
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # Flags beat API_SSL_* (environment or .env); the API child gets them as variables.
        tls = api_tls or ApiTls()
        self.env.update({f"API_{name.upper()}": path for name, path in tls.fields().items()})
        self.api = ApiSettings(**tls.fields())
        self.metrics = SupervisorMetrics()
        self.supervisor = Supervisor(ServiceGroup(self.env), settings.rules(), self.metrics)
        self.broker: LocalKafka | None = None
        self.registry: LocalRegistry | None = None
        self.stopping = threading.Event()
        self.starting = False

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stopping.is_set() and not self.starting:
            say("asyncarch", f"{name} again: killing everything now")
            self.supervisor.kill_all()
            return
        say("asyncarch", f"{name}: stopping everything (again to kill at once)")
        self.stopping.set()
        if self.starting:
            raise KeyboardInterrupt  # unwinds a blocking start-up step

    def run(self) -> int:
        """Start everything, supervise until a stop signal, then stop in order."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            tls_options(self.api)  # fail before the broker starts, not in a restart loop
        except TlsConfigError as exc:
            print(f"asyncarch up: not starting: {exc}", file=sys.stderr)
            return 1
        with ExitStack() as claims:
            try:
                self._claim(claims)
            except AlreadyRunning as exc:
                print(f"asyncarch up: not starting: {exc}", file=sys.stderr)
                return 1
            try:
                self.starting = True
                self._start()
                self.starting = False
                self._watch()
            except KeyboardInterrupt:
                pass
            except AsyncarchError as exc:
                print(f"asyncarch up: {exc}", file=sys.stderr)
                return 1
            finally:
                self.starting = False
                self.supervisor.stop(self.settings.stop_timeout_s)
                say("asyncarch", "stopped")
        return 0

    def _claim(self, claims: ExitStack) -> None:
        lock = OwnerLock(cache_root() / "up.lock")
        lock.acquire(what="asyncarch up", api=self.api.base_url, cache=str(cache_root()))
        claims.callback(lock.release)
        _check_ports(self.settings)
        self._claim_registry()
        if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
            return
        broker = LocalKafka(
            port=self.settings.kafka_port,
            controller_port=self.settings.kafka_controller_port,
            heap=self.settings.kafka_heap,
        )
        broker.claim(owner_pid=os.getpid())
        claims.callback(broker.release)
        self.broker = broker
        self.env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap_servers

    def _claim_registry(self) -> None:
        if not self.settings.registry_enabled or "SCHEMA_REGISTRY_URL" in os.environ:
            return
        registry = LocalRegistry(port=self.settings.registry_port, heap=self.settings.registry_heap)
        if busy_ports(registry.host, [registry.port]):
            raise port_taken(registry.host, registry.port, "SUPERVISOR_REGISTRY_PORT")
        self.registry = registry
        self.env["SCHEMA_REGISTRY_URL"] = registry.url

    def _start(self) -> None:
        self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        kafka = KafkaSettings()
        if (broker := self.broker) is not None:
            say("kafka", f"starting Apache Kafka (KRaft) on {broker.bootstrap_servers}")
            self.supervisor.on_start = self._note_broker_pid
            argv = tuple(broker.command())
            self.supervisor.launch(Service("kafka", BROKER, argv=argv, pass_fds=(broker.lock_fd,)))
            kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        self._wait_for_kafka(kafka)
        self._start_registry()
        ensure_topics(kafka, TopicSettings())
        for service in _stack(self.settings):
            self.supervisor.launch(service)

    def _start_registry(self) -> None:
        if (registry := self.registry) is None:
            return
        say("registry", f"starting Apicurio Registry on {registry.url} (first run: mvn builds it)")
        self.supervisor.launch(Service("registry", REGISTRY, argv=tuple(registry.command())))
        deadline = time.monotonic() + self.settings.registry_wait_s
        while not registry.ready():
            self.supervisor.tick()
            if time.monotonic() > deadline:
                raise LocalRegistryError(
                    f"the registry did not answer in {self.settings.registry_wait_s:.0f}s"
                )
            time.sleep(0.3)

    def _note_broker_pid(self, service: Service, pid: int) -> None:
        if service.name == "kafka" and self.broker is not None:
            self.broker.record(pid, owner_pid=os.getpid())

    def _wait_for_kafka(self, kafka: KafkaSettings) -> None:
        deadline = time.monotonic() + self.settings.kafka_wait_s
        while True:
            self.supervisor.tick()
            try:
                wait_for_broker(kafka, 2)
                return
            except BrokerUnavailable:
                if time.monotonic() > deadline:
                    raise

    def _watch(self) -> None:
        announced = False
        while not self.stopping.wait(0.5):
            self.supervisor.tick()
            if not announced and self._api_ready():
                url = self.api.base_url
                say("asyncarch", f"ready: {url}  (API docs: {url}/docs) — Ctrl-C stops all")
                announced = True

    def _api_ready(self) -> bool:
        """The API child we started is alive, answers /readyz, and owns the port."""
        process = self.supervisor.running("api")
        if process is None:
            return False
        host = "127.0.0.1" if self.api.host in ("0.0.0.0", "") else self.api.host
        scheme = "https" if self.api.ssl_certfile else "http"
        url = f"{scheme}://{host}:{self.api.port}/readyz"
        try:
            answer = httpx.get(url, timeout=2, verify=api_probe_verify(self.api))
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and listens_on(process.pid, self.api.port)


def run_up(settings: SupervisorSettings, api_tls: ApiTls | None = None) -> int:
    """Run ``asyncarch up`` until a stop signal; 1 if something else owns its place.

    ``api_tls`` (``--ssl-certfile``/``--ssl-keyfile``) serves the API over HTTPS.
    """
    return Up(settings, api_tls).run()
