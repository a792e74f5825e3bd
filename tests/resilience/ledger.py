"""The no-loss ledger and the steady load that fills it.

Every task the API answered 202 for is recorded with its inputs. A submission
answered 503 (or 429, or not answered at all) is retried with the same
``Idempotency-Key`` until a 202 comes or the submission gives up; only a 202
counts as accepted.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

__all__ = ["Accepted", "Ledger", "LoadGenerator", "similarity_inputs", "submit"]

RETRYABLE = {429, 502, 503, 504}
WORDS = (
    "television",
    "Samsung",
    "a flat screen TV",
    "fridge",
    "washing machine",
    "copper cable",
    "fibre optic cable",
    "power cord",
    "laptop",
    "smartphone",
    "a cup of coffee",
    "an electric kettle",
    "medium voltage cable",
    "solar panel",
    "wind turbine",
    "garden hose",
)


def similarity_inputs(rng: random.Random) -> dict[str, str]:
    """Two short texts drawn from a small vocabulary (plus a number, so inputs vary)."""
    return {
        "item_a": f"{rng.choice(WORDS)} {rng.randrange(1000)}",
        "item_b": rng.choice(WORDS),
    }


@dataclass(frozen=True)
class Accepted:
    """One task the API answered 202 for."""

    task_id: str
    inputs: dict[str, str]
    accepted_at: float  # epoch seconds of the 202


@dataclass
class Ledger:
    """What the client was told, thread-safe."""

    accepted: dict[str, Accepted] = field(default_factory=dict)
    submitted: int = 0
    given_up: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, task: Accepted) -> None:
        with self._lock:
            self.accepted.setdefault(task.task_id, task)

    def count(self, what: str, detail: str = "") -> None:
        with self._lock:
            if what == "submitted":
                self.submitted += 1
            elif what == "given_up":
                self.given_up += 1
            elif what == "unexpected":
                self.unexpected.append(detail)
            else:
                self.retries[what] += 1


class LoadGenerator:
    """Submits similarity tasks at a steady rate from a few threads.

    Each submission carries its own ``Idempotency-Key`` and is retried on
    503/429/connection errors (honouring ``Retry-After``, capped) for up to
    ``give_up_s``.
    """

    def __init__(
        self,
        base_url: str,
        ledger: Ledger,
        rate_per_s: float,
        total: int,
        threads: int = 4,
        give_up_s: float = 180.0,
        seed: int = 0,
    ) -> None:
        self.base_url, self.ledger, self.total = base_url, ledger, total
        self.interval_s = 1.0 / rate_per_s
        self.give_up_s = give_up_s
        self._rng = random.Random(seed)
        self._tickets = itertools.count()
        self._ticket_lock = threading.Lock()
        self._stop = threading.Event()
        self._started = 0.0
        self._threads = [
            threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            for i in range(threads)
        ]

    def start(self) -> LoadGenerator:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop taking new submissions (those in flight finish their retries)."""
        self._stop.set()

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        assert not alive, f"load threads still running after {timeout_s}s: {alive}"

    @property
    def done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def _next(self) -> tuple[int, dict[str, str]] | None:
        with self._ticket_lock:
            ticket = next(self._tickets)
            inputs = similarity_inputs(self._rng)
        if ticket >= self.total or self._stop.is_set():
            return None
        # Steady rate: ticket n is sent no earlier than n intervals after the start.
        delay = self._started + ticket * self.interval_s - time.monotonic()
        if delay > 0 and self._stop.wait(delay):
            return None
        return ticket, inputs

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while (job := self._next()) is not None:
                self._submit(client, job[1])

    def _submit(self, client: httpx.Client, inputs: dict[str, str]) -> None:
        submit(client, self.ledger, inputs, self.give_up_s)


def submit(
    client: httpx.Client, ledger: Ledger, inputs: dict[str, str], give_up_s: float
) -> Accepted | None:
    """POST one similarity task, retrying with its Idempotency-Key until a 202."""
    ledger.count("submitted")
    key = f"chaos-{uuid.uuid4()}"
    body = {"kind": "similarity", "inputs": inputs}
    deadline = time.monotonic() + give_up_s
    while time.monotonic() < deadline:
        try:
            response = client.post("/v1/tasks", json=body, headers={"Idempotency-Key": key})
        except httpx.HTTPError as exc:
            ledger.count(type(exc).__name__)
            time.sleep(0.5)
            continue
        if response.status_code == 202:
            task = Accepted(response.json()["task_id"], inputs, time.time())
            ledger.record(task)
            return task
        if response.status_code in RETRYABLE:
            ledger.count(str(response.status_code))
            if "Retry-After" not in response.headers:
                ledger.count(f"{response.status_code} without Retry-After")
            time.sleep(min(1.0, float(response.headers.get("Retry-After", "1"))))
            continue
        ledger.count("unexpected", f"{response.status_code} {response.text[:200]}")
        return None
    ledger.count("given_up")
    return None
