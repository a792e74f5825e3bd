"""Dependencies shared by the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from asyncarch.blobstore import BlobStore
from producer_api.core.config import ApiSettings
from producer_api.publisher import TaskPublisher
from producer_api.task_state import TaskStateClient

__all__ = ["BlobStoreDep", "PublisherDep", "SettingsDep", "TaskStateDep"]


def _publisher(request: Request) -> TaskPublisher:
    return request.app.state.publisher  # type: ignore[no-any-return]


def _task_state(request: Request) -> TaskStateClient:
    return request.app.state.task_state  # type: ignore[no-any-return]


def _blob_store(request: Request) -> BlobStore:
    return request.app.state.blob_store  # type: ignore[no-any-return]


def _settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


PublisherDep = Annotated[TaskPublisher, Depends(_publisher)]
TaskStateDep = Annotated[TaskStateClient, Depends(_task_state)]
SettingsDep = Annotated[ApiSettings, Depends(_settings)]
BlobStoreDep = Annotated[BlobStore, Depends(_blob_store)]
