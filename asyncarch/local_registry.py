"""A local schema registry: Apicurio Registry, built from Maven Central with ``mvn``.

``mvn`` builds the registry from ``deploy/registry/pom.xml`` once per version
of that folder into a cache outside the repository (``$ASYNCARCH_CACHE``,
default ``~/.cache/asyncarch``); it then runs with the installed Java (17+)
on loopback. Clients use its Confluent-compatible API, so ``url`` ends in
``/apis/ccompat/v7``. Schemas are kept in an H2 file in the state folder:
events in the (durable) local broker name schema ids, so the ids must
survive a restart of the registry as the events do.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from asyncarch.exceptions import AsyncarchError
from asyncarch.local_kafka import java_executable
from asyncarch.paths import cache_root
from asyncarch.process import spawn

__all__ = ["CCOMPAT_PATH", "LocalRegistry", "LocalRegistryError"]

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[1] / "deploy" / "registry"
CCOMPAT_PATH = "/apis/ccompat/v7"
RUNNER = "schema-registry-runtime-1.0.0-runner.jar"


class LocalRegistryError(AsyncarchError):
    """The local registry could not be provisioned or started."""


@dataclass(frozen=True)
class LocalRegistry:
    """One Apicurio Registry listening on loopback, its schemas in ``state_dir``."""

    state_dir: Path = field(default_factory=lambda: cache_root() / "registry-node")
    host: str = "127.0.0.1"
    port: int = 8081
    heap: str = "256m"

    @property
    def url(self) -> str:
        """The Confluent-compatible API: what ``SCHEMA_REGISTRY_URL`` names."""
        return f"http://{self.host}:{self.port}{CCOMPAT_PATH}"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "registry.log"

    def runner(self) -> Path:
        """The registry's runner jar, built with ``mvn`` once per version of its project."""
        build = cache_root() / "registry-dist" / _project_digest()
        jar = build / RUNNER
        if (build / ".complete").exists():
            return jar
        if shutil.which("mvn") is None:
            raise LocalRegistryError("mvn is not installed: Maven builds the schema registry")
        log.info("building Apicurio Registry with mvn", extra={"into": str(build)})
        command = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(PROJECT / "pom.xml"),
            "package",
            f"-Dregistry.build.directory={build}",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not jar.exists():
            raise LocalRegistryError(
                f"mvn could not build the registry:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
            )
        (build / ".complete").touch()
        return jar

    def command(self) -> list[str]:
        """The registry's command line, after provisioning it."""
        jar = self.runner()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return [
            java_executable(),
            f"-Xmx{self.heap}",
            "-XX:+UseSerialGC",
            "-XX:ActiveProcessorCount=2",
            f"-Dquarkus.http.host={self.host}",
            f"-Dquarkus.http.port={self.port}",
            f"-Dquarkus.datasource.jdbc.url=jdbc:h2:file:{self.state_dir / 'schemas'}",
            # The registry's production pool holds 20 connections open from the start.
            "-Dquarkus.datasource.jdbc.initial-size=1",
            "-Dquarkus.datasource.jdbc.min-size=1",
            "-Dquarkus.datasource.jdbc.max-size=8",
            "-jar",
            str(jar),
        ]

    def start(self, wait_s: float = 120.0) -> subprocess.Popen[str]:
        """Start the registry (it dies with the calling thread) and wait until it answers."""
        argv = self.command()
        with self.log_file.open("ab") as out:
            process = spawn(argv, stdout=out)
        try:
            self.wait_ready(wait_s, process)
        except LocalRegistryError:
            self.stop(process)
            raise
        return process

    def wait_ready(self, wait_s: float, process: subprocess.Popen[str] | None = None) -> None:
        """Block until the registry lists its subjects; fail if ``process`` exits first."""
        deadline = time.monotonic() + wait_s
        while not self.ready():
            if process is not None and process.poll() is not None:
                raise LocalRegistryError(
                    f"the registry exited ({process.returncode}):\n{self._tail()}"
                )
            if time.monotonic() > deadline:
                raise LocalRegistryError(
                    f"the registry did not answer in {wait_s:.0f}s:\n{self._tail()}"
                )
            time.sleep(0.3)

    def ready(self) -> bool:
        """Whether the registry answers its Confluent-compatible API."""
        try:
            return httpx.get(f"{self.url}/subjects", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, process: subprocess.Popen[str], timeout_s: float = 20.0) -> None:
        """Stop a registry this process started: SIGTERM, then SIGKILL."""
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def _project_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in PROJECT.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(PROJECT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]
