"""Reads task state from the stream processor's table views."""

from __future__ import annotations

from typing import Any

import httpx

from producer_api.exceptions import ProcessorUnavailable, TaskNotFound

__all__ = ["TaskStateClient"]


class TaskStateClient:
    """HTTP client of the Faust views; any Faust worker routes to the task's owner."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def get(self, task_id: str) -> dict[str, Any]:
        """The task's state; raises TaskNotFound or ProcessorUnavailable."""
        try:
            response = await self._http.get(f"/tasks/{task_id}/")
        except httpx.HTTPError as exc:
            raise ProcessorUnavailable(f"stream processor unreachable: {exc}") from exc
        if response.status_code == 404:
            raise TaskNotFound(f"no task with id {task_id}")
        if response.status_code != 200:
            raise ProcessorUnavailable(f"stream processor answered {response.status_code}")
        state: dict[str, Any] = response.json()
        return state

    async def healthy(self) -> bool:
        """Whether the stream processor answers and is not rebalancing."""
        try:
            response = await self._http.get("/health/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and not response.json().get("rebalancing", True)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
