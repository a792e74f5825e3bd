"""Dependencies shared by the routes, as ``Annotated`` aliases.

Every dependency is ``async def``: FastAPI runs a plain ``def`` dependency in
its thread pool, and those thread hand-offs cost more than the API's own work
on every request (the submit path's profile was dominated by them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from asyncarch.blobstore import BlobStore
from producer_api.core.config import ApiSettings
from producer_api.exceptions import Forbidden
from producer_api.monitor import PipelineMonitor
from producer_api.publisher import TaskPublisher
from producer_api.security import Caller, CallerDep
from producer_api.submission import Submitter
from producer_api.task_state import TaskStateClient

__all__ = [
    "AdmissionDep",
    "BlobStoreDep",
    "CallerDep",
    "MonitorDep",
    "MonitorViewerDep",
    "PublisherDep",
    "SettingsDep",
    "SubmitterDep",
    "TaskStateDep",
]


async def _publisher(request: Request) -> TaskPublisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


async def _task_state(request: Request) -> TaskStateClient:
    return request.app.state.task_state  # type: ignore[no-any-return]


async def _blob_store(request: Request) -> BlobStore:
    return request.app.state.blob_store  # type: ignore[no-any-return]


async def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _submitter(request: Request) -> Submitter:
    state = request.app.state
    return Submitter(state.publisher, state.task_state, state.delivery, state.in_flight)


async def _admission(request: Request, caller: CallerDep) -> Caller:
    """Admit a new task: the caller's rate limit (when configured), then the bound on
    waiting tasks."""
    if (limiter := request.app.state.rate_limiter) is not None:
        limiter.check(caller.tenant or (request.client.host if request.client else "anonymous"))
    request.app.state.waiting_tasks.check()
    return caller


async def _monitor(request: Request) -> PipelineMonitor:
    return request.app.state.monitor  # type: ignore[no-any-return]


async def _monitor_viewer(request: Request, caller: CallerDep) -> Caller:
    """With auth on, only the tenants in ``API_MONITOR_TENANTS`` see the monitor: it
    shows every tenant's dead letters."""
    settings: ApiSettings = request.app.state.settings
    if settings.auth_enabled and caller.tenant not in settings.monitor_tenant_set:
        raise Forbidden("this key's tenant is not in API_MONITOR_TENANTS")
    return caller


PublisherDep = Annotated[TaskPublisher, Depends(_publisher)]
TaskStateDep = Annotated[TaskStateClient, Depends(_task_state)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
BlobStoreDep = Annotated[BlobStore, Depends(_blob_store)]
SubmitterDep = Annotated[Submitter, Depends(_submitter)]
AdmissionDep = Annotated[Caller, Depends(_admission)]
MonitorDep = Annotated[PipelineMonitor, Depends(_monitor)]
MonitorViewerDep = Annotated[Caller, Depends(_monitor_viewer)]
