"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from producer_api.api.deps import PublisherDep, TaskStateDep

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answers while the process lives."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Kafka or the processor does not answer"}})
async def readyz(publisher: PublisherDep, task_state: TaskStateDep) -> JSONResponse:
    """200 only when Kafka and the stream processor both answer."""
    kafka_ok, processor_ok = await asyncio.gather(
        asyncio.to_thread(publisher.broker_reachable), task_state.healthy()
    )
    ready = kafka_ok and processor_ok
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {"kafka": kafka_ok, "processor": processor_ok},
        },
        status_code=200 if ready else 503,
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics() -> Response:
    """Prometheus metrics."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
