"""The live monitor: a page, and the JSON snapshot it polls."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from producer_api.api.deps import MonitorDep, MonitorViewerDep
from producer_api.problems import PROBLEM

__all__ = ["router"]

router = APIRouter(prefix="/monitor", tags=["operations"])


@router.get("", response_class=HTMLResponse)
async def monitor_page() -> str:
    """The live monitor page; it polls ``/monitor/data`` every second."""
    return _page()


@router.get(
    "/data",
    responses={
        401: PROBLEM,
        403: PROBLEM,
        503: {**PROBLEM, "description": "Kafka does not answer"},
    },
)
async def monitor_data(monitor: MonitorDep, _: MonitorViewerDep) -> dict[str, Any]:
    """Topics and end offsets, group lag, tasks by state, throughput, recent dead letters."""
    return await monitor.snapshot()


@cache
def _page() -> str:
    return resources.files("producer_api").joinpath("templates/monitor.html").read_text("utf-8")
