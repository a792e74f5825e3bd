"""Reads task state from the stream processor's table views."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from producer_api.exceptions import ProcessorUnavailable, TaskExpired, TaskNotFound

__all__ = ["TaskStateClient"]


class TaskStateClient:
    """HTTP client of the Faust views; any Faust worker routes to the task's owner.

    Each long-poll holds one connection to the processor for its wait, so the
    pool is not capped: a cap would queue pollers behind each other.
    """

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
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
        if response.status_code == 404:
            raise TaskNotFound(f"no task with id {task_id}")
        if response.status_code == 410:
            raise TaskExpired(_detail(response, f"task {task_id} has expired"))
        if response.status_code != 200:
            raise ProcessorUnavailable(f"stream processor answered {response.status_code}")
        state: dict[str, Any] = response.json()
        return state

    async def healthy(self) -> bool:
        """Whether the stream processor answers and has its partitions."""
        try:
            response = await self._http.get("/health/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def _get(
        self, task_id: str, wait_s: float, since: int | None, deadline: float
    ) -> httpx.Response:
        """One query; it may wait ``wait_s`` and must answer before ``deadline``."""
        params = {"wait": f"{wait_s:.3f}"} if wait_s > 0 else {}
        if params and since is not None:
            params["since"] = str(since)
        timeout_s = max(deadline - time.monotonic(), 0.1)
        try:
            return await self._http.get(f"/tasks/{task_id}/", params=params, timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise ProcessorUnavailable(f"stream processor unreachable: {exc}") from exc

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()


def _detail(response: httpx.Response, default: str) -> str:
    """The ``detail`` of a Faust view's JSON error body, or ``default``."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return default
    return str(detail) if detail else default
