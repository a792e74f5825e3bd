"""Reads task state from the stream processor's table views."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from producer_api.exceptions import ProcessorUnavailable, TaskExpired, TaskNotFound

__all__ = ["TaskStateClient"]


class TaskStateClient:
    """HTTP client of the Faust views; any Faust worker routes to the task's owner."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def get(self, task_id: str) -> dict[str, Any]:
        """The task's state; raises TaskNotFound, TaskExpired or ProcessorUnavailable.

        A 503 from Faust means its partitions are moving (a rebalance): the
        query is retried with backoff within the query timeout.
        """
        deadline = time.monotonic() + self.timeout_s
        delay = 0.05
        response = await self._get(f"/tasks/{task_id}/")
        while response.status_code == 503 and time.monotonic() + delay < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
            response = await self._get(f"/tasks/{task_id}/")
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

    async def _get(self, path: str) -> httpx.Response:
        try:
            return await self._http.get(path)
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
