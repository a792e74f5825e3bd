"""Turns a validated submission into a request event on Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from asyncarch.blobstore import BlobStore
from producer_api.exceptions import ApiError
from producer_api.metrics import TASKS_SUBMITTED
from producer_api.models import DocumentSearchForm, TaskAccepted, TaskCreate, TaskLinks
from producer_api.publisher import TaskPublisher
from producer_api.uploads import store_document

__all__ = ["accept_task", "parse_json_task", "submit_document_task"]

log = logging.getLogger(__name__)
_TASK = TypeAdapter(TaskCreate)


async def accept_task(
    publisher: TaskPublisher, kind: str, inputs: dict[str, Any], callback_url: str | None = None
) -> TaskAccepted:
    """Publish the request event; returns once Kafka acknowledged it."""
    task_id = str(uuid.uuid4())
    partition, offset = await publisher.publish_request(
        {
            "task_id": task_id,
            "kind": kind,
            "inputs": inputs,
            "submitted_at": int(time.time() * 1000),
            "callback_url": callback_url,
            "tenant": None,
        }
    )
    TASKS_SUBMITTED.labels(kind=kind).inc()
    log.info(
        "task accepted",
        extra={"task_id": task_id, "kind": kind, "partition": partition, "offset": offset},
    )
    links = TaskLinks(self=f"/v1/tasks/{task_id}", result=f"/v1/tasks/{task_id}/result")
    return TaskAccepted(task_id=task_id, status="PENDING", links=links)


def parse_json_task(body: bytes) -> TaskCreate:
    """Validate a JSON submission; errors name the body's fields."""
    try:
        return _TASK.validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from exc


async def submit_document_task(
    request: Request, publisher: TaskPublisher, store: BlobStore, max_bytes: int
) -> TaskAccepted:
    """Store the uploaded document, then publish a document-search request for it.

    If the request cannot be published, the stored document is deleted again.
    """
    async with request.form(max_files=1, max_fields=10) as form:
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        upload = form.get("file")
        try:
            task = DocumentSearchForm.model_validate(
                {**fields, "file": upload.filename if isinstance(upload, UploadFile) else None}
            )
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from exc
        assert isinstance(upload, UploadFile)
        ref, content_type = await store_document(
            upload.file, upload.filename or "", store, max_bytes
        )
    inputs = {
        "query": task.query,
        "document_uri": ref.uri,
        "document_size": ref.size,
        "document_sha256": ref.sha256,
        "content_type": content_type,
        "top_k": task.top_k,
    }
    try:
        return await accept_task(
            publisher,
            "document-search",
            inputs,
            str(task.callback_url) if task.callback_url else None,
        )
    except ApiError:
        await asyncio.to_thread(store.delete, ref.uri)
        raise
