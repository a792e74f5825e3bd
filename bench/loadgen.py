"""An async HTTP load generator: clients that submit a task and wait for its result.

The same clients drive both stacks; a target says how one stack is spoken to
(the pipeline's ``/v1/tasks``, or the seed's Flask routes). Every task's
latency runs from the moment its submit is sent to the moment its result has
been read back.

The clients speak HTTP through aiohttp: the generator shares the machine with
the stack it measures, and httpx's async client cost ~20 ms of CPU per task
here, more than any service of the pipeline.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

__all__ = [
    "LoadResult",
    "PipelineTarget",
    "SeedTarget",
    "Target",
    "TaskRecord",
    "make_pairs",
    "read_histories",
    "run_load",
    "stage_breakdown",
]

SUBJECTS = ["television", "phone", "laptop", "camera", "speaker", "monitor", "router", "cable"]
BRANDS = ["Samsung", "Nexans", "Sony", "LG", "Philips", "Bosch", "Siemens", "Panasonic"]
TRAITS = ["wireless", "4K", "refurbished", "compact", "waterproof", "low-voltage", "smart", "red"]
BACKOFF_S = 0.05
GET_ATTEMPTS = 3


def make_pairs(count: int, seed: int = 8) -> list[tuple[str, str]]:
    """``count`` deterministic (item_a, item_b) pairs of varied length."""
    rng = random.Random(seed)

    def item() -> str:
        words = [rng.choice(TRAITS) for _ in range(rng.randint(0, 4))]
        return " ".join(
            [*words, rng.choice(BRANDS), rng.choice(SUBJECTS), str(rng.randint(1, 999))]
        )

    return [(item(), item()) for _ in range(count)]


class Refused(Exception):
    """The stack refused a submit for good (not a 429/503 to retry)."""


class HttpStatusError(Exception):
    """A GET answered with a 4xx or 5xx."""


@dataclass(frozen=True)
class Answer:
    """An HTTP answer, read in full."""

    status_code: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HttpStatusError(f"{self.status_code}: {self.text[:200]}")


class Http:
    """A keep-alive HTTP client on one base URL that counts its requests."""

    def __init__(self, base_url: str, connections: int, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.requests = 0
        # Idle connections are dropped before either server would close them (uvicorn
        # after 5 s, gunicorn after 2 s): a submit sent on a connection the server is
        # closing fails, and a submit cannot be retried blindly.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=1.0),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )

    async def get(self, path: str, params: dict[str, str] | None = None) -> Answer:
        return await self._send("GET", path, params=params)

    async def post(
        self,
        path: str,
        json: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        return await self._send("POST", path, json=json, data=data, headers=headers)

    async def close(self) -> None:
        await self._session.close()

    async def _send(self, method: str, path: str, **options: Any) -> Answer:
        self.requests += 1
        options = {k: v for k, v in options.items() if v is not None}
        async with self._session.request(method, self.base_url + path, **options) as response:
            return Answer(response.status, await response.text(), dict(response.headers))


class Target(Protocol):
    """How the clients speak to one stack."""

    name: str
    terminal_ok: str

    async def submit(self, http: Http, pair: tuple[str, str]) -> str: ...

    async def wait(self, http: Http, task_id: str, deadline: float) -> str | None: ...

    async def result(self, http: Http, task_id: str) -> dict[str, Any] | None: ...


@dataclass
class PipelineTarget:
    """``POST /v1/tasks`` with ``Prefer: wait=S``: the answer is the task's result (200)
    when it finishes within S seconds. Otherwise (202) ``GET /v1/tasks/{id}/result?wait=S``
    (long-poll: the answer carries the output once the task is terminal), polling when
    the API answers at once without a terminal state. The histories for the stage
    breakdown are read after the run, untimed."""

    poll_s: float
    wait_s: float = 5.0
    name: str = "pipeline"
    terminal_ok: str = "SUCCESS"
    terminal: frozenset[str] = frozenset({"SUCCESS", "FAILED", "CANCELLED"})
    retries: int = 0
    transport_retries: int = 0
    # The final status body of each task (its history), kept when asked for.
    keep_bodies: bool = False
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)  # from the long-poll's answer
    fallback_polls: int = 0  # answers that came at once without a terminal state
    _finished: dict[str, dict[str, Any]] = field(default_factory=dict)  # submits answered 200

    async def submit(self, http: Http, pair: tuple[str, str]) -> str:
        body = {"kind": "similarity", "inputs": {"item_a": pair[0], "item_b": pair[1]}}
        prefer = {"Prefer": f"wait={self.wait_s:g}"}
        while True:
            response = await http.post("/v1/tasks", json=body, headers=prefer)
            if response.status_code == 200:  # finished within the wait: its result
                answer = response.json()
                self._finished[str(answer["task_id"])] = answer
                return str(answer["task_id"])
            if response.status_code == 202:
                return str(response.json()["task_id"])
            if response.status_code not in (429, 503):
                raise Refused(f"{response.status_code}: {response.text[:200]}")
            self.retries += 1
            await asyncio.sleep(_retry_after(response))

    async def wait(self, http: Http, task_id: str, deadline: float) -> str | None:
        if (answer := self._finished.pop(task_id, None)) is not None:
            self.outputs[task_id] = answer.get("output")
            return str(answer["status"])
        while time.monotonic() < deadline:
            wait_s = max(0.0, min(self.wait_s, deadline - time.monotonic()))
            asked = time.monotonic()
            params = {"wait": f"{wait_s:.2f}"}
            response = await _get(self, http, f"/v1/tasks/{task_id}/result", params=params)
            body = response.json() if response.status_code == 200 else {}
            if body.get("status") in self.terminal:
                self.outputs[task_id] = body.get("output")
                return str(body["status"])
            if time.monotonic() - asked < wait_s / 2:  # no long-poll here: poll instead
                self.fallback_polls += 1
                await asyncio.sleep(self.poll_s)
        return None

    async def result(self, http: Http, task_id: str) -> dict[str, Any] | None:
        output = self.outputs.pop(task_id, None)  # the long-poll's answer carried it
        return output if isinstance(output, dict) else None

    async def collect_histories(self, http: Http, task_ids: list[str]) -> None:
        """Each task's status body (its history), for the stage breakdown."""
        if not self.keep_bodies:
            return
        limit = asyncio.Semaphore(16)

        async def one(task_id: str) -> None:
            async with limit:
                response = await _get(self, http, f"/v1/tasks/{task_id}")
                if response.status_code == 200:
                    self.bodies[task_id] = response.json()

        await asyncio.gather(*(one(task_id) for task_id in task_ids))


@dataclass
class SeedTarget:
    """The seed's routes: form POST ``uploader/``, poll ``task_status``, read ``task_result``."""

    poll_s: float
    name: str = "celery"
    terminal_ok: str = "SUCCESS"
    terminal: frozenset[str] = frozenset({"SUCCESS", "FAILURE", "REVOKED"})
    prefix: str = "/activedocuments/nexans"
    retries: int = 0
    transport_retries: int = 0

    async def submit(self, http: Http, pair: tuple[str, str]) -> str:
        form = {"item_a": pair[0], "item_b": pair[1]}
        response = await http.post(f"{self.prefix}/uploader/", data=form)
        if response.status_code != 200:
            raise Refused(f"{response.status_code}: {response.text[:200]}")
        return str(response.json()["task_id"])

    async def wait(self, http: Http, task_id: str, deadline: float) -> str | None:
        while time.monotonic() < deadline:
            response = await _get(self, http, f"{self.prefix}/task_status/{task_id}")
            status = response.text.rsplit(" ", 1)[-1] if response.status_code == 200 else ""
            if status in self.terminal:
                return status
            await asyncio.sleep(self.poll_s)
        return None

    async def result(self, http: Http, task_id: str) -> dict[str, Any] | None:
        response = await _get(self, http, f"{self.prefix}/task_result/{task_id}")
        response.raise_for_status()
        output = response.json().get("output")
        return output if isinstance(output, dict) else None


async def _get(target: PipelineTarget | SeedTarget, http: Http, url: str, **options: Any) -> Answer:
    """A GET, sent again when the connection broke (it is idempotent; a kept-alive
    connection that the server closed meanwhile is the usual cause). Submits are not
    retried: the client cannot know whether a broken submit was accepted."""
    for attempt in range(1, GET_ATTEMPTS + 1):
        try:
            return await http.get(url, **options)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
            if attempt == GET_ATTEMPTS:
                raise
            target.transport_retries += 1
            await asyncio.sleep(BACKOFF_S * attempt)
    raise AssertionError("unreachable")


def _retry_after(response: Answer) -> float:
    try:
        return min(2.0, max(BACKOFF_S, float(response.headers.get("Retry-After", BACKOFF_S))))
    except ValueError:
        return BACKOFF_S


CLIENT_ERRORS = (aiohttp.ClientError, TimeoutError, HttpStatusError, Refused, KeyError, ValueError)


@dataclass
class TaskRecord:
    """One task as the client saw it."""

    index: int
    sent: float = 0.0
    sent_wall: float = 0.0
    task_id: str | None = None
    seen: float | None = None
    accepted: float | None = None
    finished: float | None = None
    status: str | None = None
    output: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class LoadResult:
    """Every task's record plus the run's wall clock."""

    records: list[TaskRecord]
    started: float
    ended: float
    clients: int
    retries: int = 0
    http_requests: int = 0
    transport_retries: int = 0

    def summary(self, ok: str) -> dict[str, Any]:
        """Counts, rates and latency percentiles (milliseconds)."""
        accepted = [r for r in self.records if r.accepted is not None]
        done = [r for r in accepted if r.finished is not None]
        succeeded = [r for r in done if r.status == ok]
        latencies = sorted((r.finished or 0.0) - r.sent for r in succeeded)
        last_accept = max((r.accepted or 0.0 for r in accepted), default=self.started)
        last_done = max((r.finished or 0.0 for r in done), default=self.started)
        return {
            "tasks": len(self.records),
            "clients": self.clients,
            "accepted": len(accepted),
            "rejected": sum(1 for r in self.records if r.sent and r.accepted is None),
            "not_sent": sum(1 for r in self.records if not r.sent),  # the time bound passed
            "succeeded": len(succeeded),
            "failed": len(done) - len(succeeded),
            "lost": len(accepted) - len(done),
            "submit_retries": self.retries,
            "get_retries_after_broken_connection": self.transport_retries,
            "http_requests_per_task": round(self.http_requests / max(1, len(self.records)), 2),
            "wall_s": round(self.ended - self.started, 3),
            "submits_per_s": _rate(len(accepted), last_accept - self.started),
            "completed_per_s": _rate(len(succeeded), last_done - self.started),
            "latency_ms": percentiles([s * 1000 for s in latencies]),
            "errors": sorted({r.error for r in self.records if r.error})[:5],
        }


def stage_breakdown(records: list[TaskRecord], bodies: dict[str, dict[str, Any]]) -> dict:
    """p50 and p95 milliseconds of each stage of a pipeline task, from its history (one clock:
    everything runs on this host): the API's 202, PENDING to RUNNING (queue and batch
    wait), RUNNING to SUCCESS (forward pass), SUCCESS to the client having its result
    (transaction commit, processor, long-poll)."""
    stages: dict[str, list[float]] = {}
    for record in records:
        body = bodies.get(record.task_id or "")
        if body is None or record.accepted is None or record.seen is None or not record.finished:
            continue
        at = {entry["state"]: entry["at"] / 1000 for entry in body.get("history", [])}
        if not {"PENDING", "RUNNING", "SUCCESS"} <= at.keys():
            continue
        seen_wall = record.sent_wall + (record.seen - record.sent)
        spans = {
            # To the API's acceptance (its PENDING), not to the submit's answer: with
            # Prefer: wait that answer is the result.
            "api_202": at["PENDING"] - record.sent_wall,
            "pending_to_running": at["RUNNING"] - at["PENDING"],
            "running_to_success": at["SUCCESS"] - at["RUNNING"],
            "success_to_seen": seen_wall - at["SUCCESS"],
        }
        for name, seconds in spans.items():
            stages.setdefault(name, []).append(seconds * 1000)
    cuts = {name: percentiles(sorted(values)) for name, values in stages.items()}
    return {name: {"p50": cut["p50"], "p95": cut["p95"]} for name, cut in cuts.items()}


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max of sorted ``values`` (None when empty)."""
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "max": round(values[-1], 1),
        "mean": round(statistics.fmean(values), 1),
    }


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 2) if seconds > 0 and count else 0.0


async def run_load(
    target: Target,
    base_url: str,
    pairs: list[tuple[str, str]],
    clients: int,
    timeout_s: float,
    keep_outputs: set[int],
) -> LoadResult:
    """``clients`` concurrent clients work through ``pairs``; each task gets at most
    ``timeout_s`` from the run's start (then it counts as lost)."""
    records = [TaskRecord(i) for i in range(len(pairs))]
    queue: asyncio.Queue[TaskRecord] = asyncio.Queue()
    for record in records:
        queue.put_nowait(record)
    started = time.monotonic()
    deadline = started + timeout_s
    http = Http(base_url, clients)
    try:

        async def client() -> None:
            while not queue.empty() and time.monotonic() < deadline:
                record = queue.get_nowait()
                await _one_task(target, http, record, pairs[record.index], deadline, keep_outputs)

        await asyncio.gather(*(client() for _ in range(clients)))
        ended, requests = time.monotonic(), http.requests
    finally:
        await http.close()
    retries = getattr(target, "retries", 0)
    broken = getattr(target, "transport_retries", 0)
    return LoadResult(records, started, ended, clients, retries, requests, broken)


async def read_histories(target: Target, base_url: str, records: list[TaskRecord]) -> None:
    """Each finished task's history, for a target that keeps them (the stage breakdown).

    Called after a run and after its CPU was read: these queries are not part of
    the load, and counted in they added a GET per task to the API's and the
    processor's CPU per task."""
    collect = getattr(target, "collect_histories", None)
    if collect is None:
        return
    http = Http(base_url, 16)
    try:
        await collect(http, [r.task_id for r in records if r.task_id and r.status])
    finally:
        await http.close()


async def _one_task(
    target: Target,
    http: Http,
    record: TaskRecord,
    pair: tuple[str, str],
    deadline: float,
    keep_outputs: set[int],
) -> None:
    record.sent, record.sent_wall = time.monotonic(), time.time()
    try:
        task_id = record.task_id = await target.submit(http, pair)
        record.accepted = time.monotonic()
        status = await target.wait(http, task_id, deadline)
        if status is None:
            return
        record.seen = time.monotonic()
        output = await target.result(http, task_id)
        record.finished, record.status = time.monotonic(), status
        if record.index in keep_outputs:
            record.output = output
    except (
        aiohttp.ClientError,
        TimeoutError,
        HttpStatusError,
        Refused,
        KeyError,
        ValueError,
    ) as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:200]
        if record.accepted is not None and record.finished is None:
            record.finished, record.status = time.monotonic(), "CLIENT_ERROR"
