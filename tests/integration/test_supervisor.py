"""``asyncarch up`` as a process manager, run as a real command against real processes.

Restarts a killed worker while the stack keeps serving, refuses a second run
beside a running one, stops everything on SIGHUP (API first, processor last),
and leaves nothing alive, its own broker included, when it is SIGKILLed; a
SIGKILLed broker is restarted and every service reconnects to it by itself.
"""

from __future__ import annotations

import os
import re
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from asyncarch.config import KafkaSettings
from asyncarch.local_kafka import LocalKafka, cache_root
from asyncarch.ownership import busy_ports
from asyncarch.process import alive, spawn
from asyncarch.supervisor import ServiceGroup
from schemas.topics import TopicSettings
from tests.certificates import self_signed
from tests.helpers import eventually, read_all
from tests.resilience.audit import committed_results
from tests.stack import free_port, service_env, wait_for_state

pytestmark = pytest.mark.integration

STARTED = re.compile(r"started (\S+) \(pid (\d+)\)")


@dataclass
class Up:
    """A running ``asyncarch up`` and its output."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    log: Path

    @classmethod
    def start(cls, env: dict[str, str], log: Path, *args: str) -> Up:
        with log.open("w") as out:
            process = spawn(
                [sys.executable, "-m", "asyncarch.cli", "up", *args], env=env, stdout=out
            )
        return cls(process, env, log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self) -> dict[str, int]:
        """The latest pid of each service, from the supervisor's ``started`` lines."""
        return {name: int(pid) for name, pid in STARTED.findall(self.output())}

    def wait_started(self, names: set[str], timeout_s: float = 120.0) -> dict[str, int]:
        return eventually(
            lambda: self.pids() if names <= self.pids().keys() else None,
            timeout_s,
            f"{names} started\n{self.output()[-3000:]}",
        )

    def wait_ready(self, timeout_s: float = 180.0) -> None:
        eventually(
            lambda: "ready: " in self.output() or self.process.poll() is not None,
            timeout_s,
            f"ready\n{self.output()[-3000:]}",
        )
        assert self.process.poll() is None, self.output()[-3000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def up_command(env: dict[str, str], *args: str, timeout_s: float = 60) -> tuple[int, str]:
    """Run ``asyncarch up`` to its end; its exit status and all its output."""
    done = subprocess.run(
        [sys.executable, "-m", "asyncarch.cli", "up", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def stack_env(tmp: Path, **extra: str) -> dict[str, str]:
    """Free ports, a cache folder of its own, quick restarts (added to the environment).

    No schema registry unless ``extra`` enables it (one test does).
    """
    api, web = free_port(), free_port()
    (tmp / "cache").mkdir()
    for built in ("kafka-dist", "registry-dist"):  # shared with the session: no second mvn run
        dist = cache_root() / built
        dist.mkdir(parents=True, exist_ok=True)
        (tmp / "cache" / built).symlink_to(dist)
    return {
        "ASYNCARCH_CACHE": str(tmp / "cache"),
        "API_PORT": str(api),
        "API_PROCESSOR_URL": f"http://127.0.0.1:{web}",
        "PROCESSOR_WEB_PORT": str(web),
        "BLOB_URL": (tmp / "blobs").as_uri(),
        "WORKER_TORCH_THREADS": "1",
        "SUPERVISOR_METRICS_PORT": str(free_port()),
        "SUPERVISOR_STOP_TIMEOUT_S": "10",
        "SUPERVISOR_REGISTRY_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def session_broker_env(kafka: KafkaSettings, tmp: Path) -> dict[str, str]:
    """A stack on the session's broker, with topics and groups of its own."""
    tag = uuid.uuid4().hex[:10]
    topics = TopicSettings(prefix=f"s-{tag}", partitions=3)
    return service_env(kafka, topics, tag, **stack_env(tmp))


@pytest.fixture(scope="module")
def stack(kafka: KafkaSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """One supervised stack on the session broker, shared by the module's serving tests."""
    tmp = tmp_path_factory.mktemp("up")
    env = session_broker_env(kafka, tmp)
    up = Up.start(env, tmp / "up.log")
    up.wait_ready()
    yield up
    up.stop()


def submit_and_finish(env: dict[str, str]) -> dict:
    with httpx.Client(base_url=f"http://127.0.0.1:{env['API_PORT']}", timeout=30) as client:
        answer = client.post(
            "/v1/tasks", json={"kind": "similarity", "inputs": {"item_a": "tv", "item_b": "set"}}
        )
        assert answer.status_code == 202, answer.text
        return wait_for_state(client, answer.json()["task_id"], {"SUCCESS", "FAILED"}, 90)


def restarts(env: dict[str, str], service: str) -> float:
    metrics = httpx.get(f"http://127.0.0.1:{env['SUPERVISOR_METRICS_PORT']}/metrics").text
    pattern = rf'asyncarch_supervisor_restarts_total{{service="{service}"}} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


def test_a_killed_worker_is_restarted_and_the_stack_keeps_serving(stack: Up) -> None:
    old = stack.pids()["worker-1"]
    os.kill(old, signal.SIGKILL)
    eventually(lambda: stack.pids()["worker-1"] != old, 30, "worker-1 restarted")
    assert "worker-1 exited (signal SIGKILL)" in stack.output()
    assert restarts(stack.env, "worker-1") == 1
    assert submit_and_finish(stack.env)["status"] == "SUCCESS"
    assert stack.process.poll() is None


def test_a_worker_killed_in_the_middle_of_200_tasks_loses_and_duplicates_none(
    stack: Up, kafka: KafkaSettings
) -> None:
    """Issue #9's bar: restarted, every task done within 30 s of the kill, one result each."""
    base = f"http://127.0.0.1:{stack.env['API_PORT']}"
    with httpx.Client(base_url=base, timeout=30) as client, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: _submit(client, i), range(100)))
        wait_for_state(client, ids[20], {"SUCCESS"}, 90)
        old = stack.pids()["worker-1"]
        os.kill(old, signal.SIGKILL)
        killed_at = time.monotonic()
        # The other half arrives while the worker is down: the kill is mid-stream
        # whatever the worker's speed.
        ids += list(pool.map(lambda i: _submit(client, i), range(100, 200)))
        states = list(pool.map(lambda t: _finished(client, t, killed_at + 30), ids))
    assert stack.pids()["worker-1"] != old
    assert [s["task_id"] for s in states if s["status"] != "SUCCESS"] == []
    topic = TopicSettings(prefix=stack.env["TOPIC_PREFIX"]).results
    per_task = Counter(event["task_id"] for event in committed_results(kafka, topic))
    assert {t: per_task[t] for t in ids if per_task[t] != 1} == {}


TERMINAL = {"SUCCESS", "FAILED", "CANCELLED"}


def _submit(client: httpx.Client, i: int) -> str:
    inputs = {"item_a": f"television set {i}", "item_b": f"samsung screen {i % 7}"}
    answer = client.post("/v1/tasks", json={"kind": "similarity", "inputs": inputs})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["task_id"])


def _finished(client: httpx.Client, task_id: str, deadline: float) -> dict:
    """The task's status once terminal, long-polling; fails after ``deadline``."""
    while (left := deadline - time.monotonic()) > 0:
        body = client.get(f"/v1/tasks/{task_id}", params={"wait": min(left, 10)}).json()
        if body["status"] in TERMINAL:
            return dict(body)
    raise AssertionError(f"task {task_id} not finished within 30 s of the kill")


def test_a_second_up_beside_the_first_exits_and_the_first_keeps_serving(
    stack: Up, tmp_path: Path
) -> None:
    pid = stack.process.pid
    status, output = up_command(stack.env)
    assert status == 1
    assert f"asyncarch up is already running (pid {pid}" in output
    other_cache = {**stack.env, "ASYNCARCH_CACHE": str(tmp_path)}
    status, output = up_command(other_cache)
    assert status == 1
    api = f"port {stack.env['API_PORT']} on 127.0.0.1 (API_PORT)"
    assert f"{api} is already in use by pid {stack.pids()['api']}" in output
    assert "ready:" not in output
    assert submit_and_finish(stack.env)["status"] == "SUCCESS"
    assert all(alive(p) for p in stack.pids().values())


def hang_up(up: Up) -> None:
    """A closed terminal: SIGHUP to the supervisor."""
    up.process.send_signal(signal.SIGHUP)


def ctrl_c(up: Up) -> None:
    """Ctrl-C in a terminal: SIGINT to the supervisor's whole process group."""
    os.killpg(os.getpgid(up.process.pid), signal.SIGINT)


@pytest.mark.parametrize("stop", [hang_up, ctrl_c], ids=["SIGHUP", "Ctrl-C"])
def test_a_stop_signal_stops_everything_api_first(
    kafka: KafkaSettings, tmp_path: Path, stop: Callable[[Up], None]
) -> None:
    env = session_broker_env(kafka, tmp_path)
    up = Up.start(env, tmp_path / "up.log", "--workers", "2")
    pids = up.wait_started({"processor", "worker-1", "worker-2", "api"})
    assert all(alive(pid) for pid in pids.values())
    stop(up)
    assert up.process.wait(60) == 0
    assert not [name for name, pid in pids.items() if alive(pid)]
    stops = re.findall(r"asyncarch \| stopping (.+)", up.output())
    assert stops == ["api", "worker-1, worker-2", "processor"]
    assert " exited (" not in up.output(), "a service got the signal before the supervisor"


def test_up_starts_a_schema_registry_and_every_service_writes_through_it(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    """The registry starts by default (here on a free port), stops after the services."""
    env = session_broker_env(kafka, tmp_path)
    env.pop("SCHEMA_REGISTRY_URL", None)
    registry_port = free_port()
    env.update(SUPERVISOR_REGISTRY_ENABLED="true", SUPERVISOR_REGISTRY_PORT=str(registry_port))
    up = Up.start(env, tmp_path / "up.log")
    try:
        up.wait_ready()
        task = submit_and_finish(env)
        assert task["status"] == "SUCCESS"
        results = TopicSettings(prefix=env["TOPIC_PREFIX"]).results
        found = read_all(kafka, results, 1)
        assert [m.value()[0] for m in found] == [0], "not in the Confluent wire format"
        url = f"http://127.0.0.1:{registry_port}/apis/ccompat/v7/subjects"
        assert f"{results}-value" in httpx.get(url, timeout=5).json()
    finally:
        up.stop()
    stops = re.findall(r"asyncarch \| stopping (.+)", up.output())
    assert stops == ["api", "worker-1", "processor", "registry"]


def test_sigkill_of_the_supervisor_leaves_nothing_alive_not_even_its_broker(
    tmp_path: Path,
) -> None:
    ports = {"SUPERVISOR_KAFKA_PORT": free_port(), "SUPERVISOR_KAFKA_CONTROLLER_PORT": free_port()}
    extra = stack_env(tmp_path, **{k: str(v) for k, v in ports.items()}, TOPIC_PARTITIONS="3")
    env = {k: v for k, v in {**os.environ, **extra}.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    up = Up.start(env, tmp_path / "up.log")
    pids = up.wait_started({"kafka", "processor", "worker-1", "api"}, timeout_s=180)
    broker = LocalKafka(state_dir=tmp_path / "cache" / "kafka-node")
    assert broker.running_pid() == pids["kafka"]
    refused = subprocess.run(
        [sys.executable, "-m", "asyncarch.cli", "kafka", "down"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert f"belongs to process {up.process.pid}" in refused.stderr
    assert alive(pids["kafka"])
    up.process.kill()
    up.process.wait()
    eventually(lambda: not [pid for pid in pids.values() if alive(pid)], 15, f"all of {pids} dead")
    # A killed JVM's leader is a zombie while its other threads still exit, and the
    # data folder's lock goes with the last of them.
    eventually(lambda: broker.running_pid() is None, 15, "the broker's lock released")
    assert busy_ports("127.0.0.1", ports.values()) == []


def test_up_serves_the_api_over_https_with_its_ssl_flags(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    pair = self_signed(tmp_path)
    env = {
        k: v for k, v in session_broker_env(kafka, tmp_path).items() if not k.startswith("API_SSL")
    }
    up = Up.start(
        env, tmp_path / "up.log", "--ssl-certfile", str(pair.cert), "--ssl-keyfile", str(pair.key)
    )
    try:
        up.wait_ready()
        url = f"https://127.0.0.1:{env['API_PORT']}"
        assert f"ready: {url}  (API docs: {url}/docs)" in up.output()
        assert httpx.get(f"{url}/readyz", verify=ssl_context(pair.cert), timeout=10).is_success
    finally:
        assert up.stop() == 0


def test_up_with_a_certificate_but_no_key_does_not_start(tmp_path: Path) -> None:
    pair = self_signed(tmp_path)
    env = {k: v for k, v in {**os.environ, **stack_env(tmp_path)}.items() if k != "API_SSL_KEYFILE"}
    status, output = up_command(env, "--ssl-certfile", str(pair.cert))
    assert status == 1
    assert "not starting: API_SSL_CERTFILE is set but API_SSL_KEYFILE is not" in output
    assert "kafka" not in output.split("not starting")[0]


def ssl_context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


SERVICE_THAT_LOGS = """
import logging
from asyncarch.logs import configure_logging
configure_logging("producer_api")
logging.getLogger("uvicorn.error").info("Uvicorn running", extra={"color_message": "\\x1b[1m"})
logging.getLogger("producer_api.submission").info("task accepted", extra={"task_id": "t1"})
print("%4|FAIL|rdkafka#producer-1| localhost:9092/bootstrap: Connection refused", flush=True)
"""


def test_log_format_text_renders_each_relayed_json_line_as_a_human_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The supervisor's relay, forced to text; its child still writes JSON (no ``producer_api``)."""
    monkeypatch.setenv("LOG_FORMAT", "text")
    group = ServiceGroup(env=dict(os.environ))
    assert group.start("api", argv=[sys.executable, "-c", SERVICE_THAT_LOGS]).wait(30) == 0
    relayed: list[str] = []

    def output() -> str | None:
        relayed.append(capsys.readouterr().out)
        return "".join(relayed) if "rdkafka" in "".join(relayed) else None

    lines = eventually(output, 10, "the child's lines relayed").splitlines()
    assert [re.sub(r"\d\d:\d\d:\d\d", "hh:mm:ss", line) for line in lines] == [
        "      api | hh:mm:ss INFO  Uvicorn running",
        "      api | hh:mm:ss INFO  task accepted  task_id=t1",
        "      api | %4|FAIL|rdkafka#producer-1| localhost:9092/bootstrap: Connection refused",
    ]


def test_a_killed_broker_is_restarted_and_the_stack_serves_again_with_nothing_lost(
    tmp_path: Path,
) -> None:
    """SIGKILL of the broker ``asyncarch up`` started: the supervisor restarts it on its
    data folder; a task finished before the kill still answers, one accepted just
    before it finishes, and new ones are accepted and finish. No service is restarted:
    each reconnects to the broker by itself."""
    ports = {"SUPERVISOR_KAFKA_PORT": free_port(), "SUPERVISOR_KAFKA_CONTROLLER_PORT": free_port()}
    extra = stack_env(tmp_path, **{k: str(v) for k, v in ports.items()}, TOPIC_PARTITIONS="3")
    env = {k: v for k, v in {**os.environ, **extra}.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    up = Up.start(env, tmp_path / "up.log")
    try:
        up.wait_ready(timeout_s=240)
        before = submit_and_finish(env)
        assert before["status"] == "SUCCESS"
        base = f"http://127.0.0.1:{env['API_PORT']}"
        with httpx.Client(base_url=base, timeout=30) as client:
            accepted = _submit(client, 1)
            old = up.pids()
            os.kill(old["kafka"], signal.SIGKILL)
            eventually(lambda: up.pids()["kafka"] != old["kafka"], 60, "the broker restarted")
            assert "kafka exited (signal SIGKILL)" in up.output()
            assert _status_through_outage(client, accepted) == "SUCCESS"
            assert _status_through_outage(client, _submit_when_taken(client, 2)) == "SUCCESS"
            again = client.get(f"/v1/tasks/{before['task_id']}")
            assert again.status_code == 200 and again.json()["status"] == "SUCCESS"
        assert {n: p for n, p in up.pids().items() if n != "kafka"} == {
            n: p for n, p in old.items() if n != "kafka"
        }, "a service was restarted"
        assert up.process.poll() is None
    finally:
        up.stop()
    assert not [pid for pid in up.pids().values() if alive(pid)]


def _status_through_outage(client: httpx.Client, task_id: str, timeout_s: float = 120) -> str:
    """A task's terminal status, asked again while the answer is 503 (the processor
    cannot know its table is current while the broker is away), after Retry-After."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = client.get(f"/v1/tasks/{task_id}", params={"wait": 5})
        if answer.status_code == 200 and answer.json()["status"] in TERMINAL:
            return str(answer.json()["status"])
        if answer.status_code == 503:
            assert answer.json()["title"] == "Task state unavailable", answer.text
            time.sleep(float(answer.headers["Retry-After"]))
            continue
        assert answer.status_code == 200, answer.text
    raise AssertionError(f"task {task_id} not finished in {timeout_s} s")


def _submit_when_taken(client: httpx.Client, i: int, timeout_s: float = 60) -> str:
    """Submit once the API accepts again: while it cannot reach the broker it
    answers 503 with Retry-After, and the client tries again."""
    inputs = {"item_a": f"television set {i}", "item_b": f"samsung screen {i % 7}"}
    deadline = time.monotonic() + timeout_s
    while True:
        answer = client.post("/v1/tasks", json={"kind": "similarity", "inputs": inputs})
        if answer.status_code == 202:
            return str(answer.json()["task_id"])
        assert answer.status_code == 503, answer.text
        assert "Retry-After" in answer.headers
        assert time.monotonic() < deadline, f"still refused: {answer.text}"
        time.sleep(float(answer.headers["Retry-After"]))
