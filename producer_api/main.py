"""The FastAPI application and the ``asyncarch api`` entry point."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from asyncarch.blobstore import open_store
from asyncarch.config import DeliverySettings, KafkaSettings
from asyncarch.logs import configure_logging
from producer_api.api.routes import health, monitor, seed, task_events, tasks
from producer_api.body_limit import BodySizeLimit
from producer_api.cluster_probe import ClusterProbe, GroupWatch
from producer_api.core.config import ApiSettings
from producer_api.limits import RateLimiter, WaitingTasksMonitor
from producer_api.models import PROBLEM_SCHEMAS, TASK_SCHEMA_DEFS
from producer_api.monitor import PipelineMonitor
from producer_api.problems import install_error_handlers
from producer_api.publisher import TaskPublisher
from producer_api.task_state import TaskStateClient
from producer_api.tls import TlsConfigError, tls_options
from schemas.topics import TopicSettings

__all__ = ["create_app", "main"]


def create_app(
    settings: ApiSettings | None = None,
    kafka: KafkaSettings | None = None,
    topics: TopicSettings | None = None,
    delivery: DeliverySettings | None = None,
) -> FastAPI:
    """Build the app; the lifespan opens the Kafka producer and flushes it on shutdown."""
    settings = settings or ApiSettings()
    kafka = kafka or KafkaSettings()
    topics = topics or TopicSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.publisher = TaskPublisher(kafka, topics, settings.publish_timeout_s)
        app.state.publisher.learn_schema_ids()
        app.state.task_state = TaskStateClient(settings.processor_url, settings.query_timeout_s)
        app.state.in_flight = {}  # submissions with an Idempotency-Key being accepted
        app.state.blob_store = open_store()
        app.state.delivery = delivery or DeliverySettings()
        app.state.rate_limiter = (
            RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
            if settings.rate_limit_per_s
            else None
        )
        app.state.waiting_tasks = WaitingTasksMonitor(
            kafka,
            topics.requests,
            settings.worker_group_id,
            settings.max_waiting_tasks,
            settings.lag_check_interval_s,
        )
        app.state.monitor = PipelineMonitor(
            ClusterProbe(kafka, topics, _watched_groups(settings, topics)),
            app.state.task_state,
            app.state.publisher.connectivity,
        )
        try:
            yield
        finally:
            app.state.monitor.close()
            app.state.waiting_tasks.close()
            app.state.publisher.close()
            await app.state.task_state.close()

    app = FastAPI(
        title="asyncarch",
        version="0.1.0",
        lifespan=lifespan,
        description="Asynchronous ML inference on Apache Kafka",
    )
    install_error_handlers(app)
    # Room for the multipart framing and fields around the largest document.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes + 64 * 1024)
    _document_task_schemas(app)
    app.include_router(tasks.router)
    app.include_router(task_events.router)
    app.include_router(health.router)
    app.include_router(seed.router)
    app.include_router(monitor.router)
    return app


def _watched_groups(settings: ApiSettings, topics: TopicSettings) -> tuple[GroupWatch, ...]:
    """The groups the monitor follows: the workers read requests, the Faust app folds
    requests, status, results and cancellations into its table."""
    return (
        GroupWatch("workers", settings.worker_group_id, (topics.requests,)),
        GroupWatch(
            "processor",
            settings.processor_group_id,
            (topics.requests, topics.status, topics.results, topics.cancellations),
        ),
    )


def _document_task_schemas(app: FastAPI) -> None:
    """Complete the generated OpenAPI: POST /v1/tasks reads its body itself (JSON or
    multipart), and every error answers an RFC 9457 problem body."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        spec = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(TASK_SCHEMA_DEFS)
        schemas.update(PROBLEM_SCHEMAS)
        for schema in ("HTTPValidationError", "ValidationError"):
            schemas.pop(schema, None)
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operation in (op for path in spec["paths"].values() for op in path.values()):
            for code, response in operation.get("responses", {}).items():
                if code.isdigit() and int(code) >= 400:
                    response["content"] = problem
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def main(**overrides: Any) -> None:
    """Entry point of ``asyncarch api``; ``overrides`` (e.g. ``ssl_certfile``) beat the env.

    Exits with one line on stderr when the HTTPS settings cannot work.
    """
    configure_logging("producer_api")
    settings = ApiSettings(**overrides)
    try:
        tls = tls_options(settings)
    except TlsConfigError as exc:
        sys.exit(f"asyncarch api: {exc}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=settings.access_log,
        **tls,
    )
