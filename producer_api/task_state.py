"""Reads task state from the stream processor's table views."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from producer_api.exceptions import ProcessorUnavailable, TaskExpired, TaskNotFound

__all__ = ["TaskStateClient"]

# A healthy processor answers its health view in milliseconds; a hung one must not
# hold /readyz past a kubelet's default probe timeout (1 s).
HEALTH_TIMEOUT_S = 0.8
# The live monitor reads the processor's metrics once a second at most.
METRICS_TIMEOUT_S = 2.0
# Requests this API wrote lately whose tasks were not read back yet, by task id:
# their offsets spare the processor a broker probe on the first queries (it waits
# for the offset instead). Older ones fall back to the probe. ~100 bytes each.
WRITTEN_OFFSETS_MAX = 100_000


@dataclass(frozen=True)
class ViewAnswer:
    """A Faust view's status code and decoded JSON body (None when not JSON)."""

    status_code: int
    body: Any


class TaskStateClient:
    """HTTP client of the Faust views; any Faust worker routes to the task's owner.

    Each long-poll holds one connection to the processor for its wait, so the
    pool is not capped: a cap would queue pollers behind each other. aiohttp,
    not httpx: every task query crosses this hop, and httpx cost the API
    several times more CPU per request. Create it on the running event loop.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._base_url = base_url.rstrip("/")
        self._written: OrderedDict[str, int] = OrderedDict()
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        )

    async def get(
        self, task_id: str, wait_s: float = 0.0, since: int | None = None
    ) -> dict[str, Any]:
        """The task's state; raises TaskNotFound, TaskExpired or ProcessorUnavailable.

        With ``wait_s`` the processor answers once the task is terminal (or, with
        ``since``, once its ``updated_at`` differs from ``since``), or after
        ``wait_s``; the request's timeout is ``wait_s`` plus the query timeout.
        A 503 from Faust means its partitions are moving (a rebalance): the
        query is retried with backoff within the query timeout.
        """
        wait_until = time.monotonic() + wait_s
        deadline = wait_until + self.timeout_s
        delay = 0.05
        while True:
            response = await self._get(task_id, wait_until - time.monotonic(), since, deadline)
            if response.status_code != 503 or time.monotonic() + delay >= deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        if response.status_code in (200, 404, 410):
            self._written.pop(task_id, None)  # the table has it, or never will
        if response.status_code == 404:
            raise TaskNotFound(f"no task with id {task_id}")
        if response.status_code == 410:
            raise TaskExpired(_detail(response, f"task {task_id} has expired"))
        if response.status_code != 200 or not isinstance(response.body, dict):
            raise ProcessorUnavailable(f"stream processor answered {response.status_code}")
        return response.body

    def remember_written(self, task_id: str, offset: int) -> None:
        """Note where this API wrote a task's request (read-your-writes without a probe)."""
        self._written[task_id] = offset
        if len(self._written) > WRITTEN_OFFSETS_MAX:
            self._written.popitem(last=False)

    async def healthy(self) -> bool:
        """Whether the stream processor answers and has its partitions."""
        try:
            answer = await self._request("/health/", {}, HEALTH_TIMEOUT_S)
        except ProcessorUnavailable:
            return False
        return answer.status_code == 200

    async def metrics_text(self) -> str:
        """The processor's Prometheus exposition; raises ProcessorUnavailable."""
        try:
            async with self._http.get(
                f"{self._base_url}/metrics/",
                timeout=aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S),
                allow_redirects=False,
            ) as response:
                if response.status != 200:
                    raise ProcessorUnavailable(f"stream processor answered {response.status}")
                return await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProcessorUnavailable(f"stream processor unreachable: {exc!r}") from exc

    async def _get(
        self, task_id: str, wait_s: float, since: int | None, deadline: float
    ) -> ViewAnswer:
        """One query; it may wait ``wait_s`` and must answer before ``deadline``."""
        params = {"wait": f"{wait_s:.3f}"} if wait_s > 0 else {}
        if params and since is not None:
            params["since"] = str(since)
        if (written := self._written.get(task_id)) is not None:
            params["written"] = str(written)
        timeout_s = max(deadline - time.monotonic(), 0.1)
        return await self._request(f"/tasks/{task_id}/", params, timeout_s)

    async def _request(self, path: str, params: dict[str, str], timeout_s: float) -> ViewAnswer:
        try:
            async with self._http.get(
                self._base_url + path,
                params=params,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                try:
                    body = await response.json(content_type=None, loads=orjson.loads)
                except ValueError:
                    body = None
                return ViewAnswer(response.status, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProcessorUnavailable(f"stream processor unreachable: {exc!r}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.close()


def _detail(response: ViewAnswer, default: str) -> str:
    """The ``detail`` of a Faust view's JSON error body, or ``default``."""
    detail = response.body.get("detail") if isinstance(response.body, dict) else None
    return str(detail) if detail else default
