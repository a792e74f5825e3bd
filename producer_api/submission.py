"""Turns a validated submission into a request event on Kafka."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from asyncarch.blobstore import BlobStore
from asyncarch.clock import now_ms
from asyncarch.config import DeliverySettings
from asyncarch.sink_targets import destination_refusal, parse_sink_url
from producer_api.exceptions import ApiError, IdempotencyConflict, TaskNotFound
from producer_api.metrics import TASKS_SUBMITTED
from producer_api.models import DocumentSearchForm, TaskAccepted, TaskCreate, TaskLinks
from producer_api.publisher import TaskPublisher
from producer_api.task_state import TaskStateClient
from producer_api.uploads import store_document

__all__ = [
    "Submission",
    "Submitter",
    "check_destination",
    "parse_json_task",
    "read_document_form",
]

log = logging.getLogger(__name__)
_TASK = TypeAdapter(TaskCreate)
IDEMPOTENCY_NAMESPACE = uuid.UUID("6a0f2f0e-8f5c-4d1e-9b7a-2f3c4d5e6f70")


@dataclass(frozen=True)
class Submission:
    """One task as a client asked for it."""

    kind: str
    inputs: dict[str, Any]
    callback_url: str | None = None
    tenant: str | None = None
    idempotency_key: str | None = None
    deliver_to: str | None = None

    def fingerprint(self) -> str:
        """SHA-256 of what was asked; a document counts by its content hash, not its URI."""
        inputs = {k: v for k, v in self.inputs.items() if k != "document_uri"}
        body = {"kind": self.kind, "inputs": inputs, "callback_url": self.callback_url}
        if self.deliver_to is not None:  # absent, the digest is the one it was before sinks
            body["deliver_to"] = self.deliver_to
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def task_id(self) -> str:
        """A fresh id, or with an Idempotency-Key the same id for the same tenant and key."""
        if self.idempotency_key is None:
            return str(uuid.uuid4())
        return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{self.tenant}\x00{self.idempotency_key}"))


# Submissions with an Idempotency-Key being accepted right now in this process, by
# task id: the request's digest, and a future set to the answer (None if it failed).
InFlight = dict[str, tuple[str, "asyncio.Future[TaskAccepted | None]"]]


@dataclass(frozen=True)
class Submitter:
    """Publishes submissions, honouring Idempotency-Key against the task-state table."""

    publisher: TaskPublisher
    task_state: TaskStateClient
    delivery: DeliverySettings
    in_flight: InFlight = field(default_factory=dict)

    async def accept(self, submission: Submission) -> tuple[TaskAccepted, bool]:
        """Publish the request (once Kafka acked it); returns (answer, replayed)."""
        check_destination(submission.deliver_to, self.delivery)
        task_id, digest = submission.task_id(), submission.fingerprint()
        # An outage answers 503 at once; the idempotency lookup below would wait
        # on the processor, which cannot confirm anything without the broker.
        await self.publisher.ensure_accepting()
        if submission.idempotency_key is None:
            return await self._publish(submission, task_id, digest), False
        # A retry that arrives while the first try is still being accepted here (its
        # client timed out: the registry or the broker was slow) waits for it and
        # replays its answer; the table cannot know of a request not yet written.
        while (pending := self.in_flight.get(task_id)) is not None:
            first_digest, answer = pending
            if first_digest != digest:
                raise _conflict(submission)
            if (accepted := await asyncio.shield(answer)) is not None:
                return accepted, True
        answer = asyncio.get_running_loop().create_future()
        self.in_flight[task_id] = (digest, answer)
        try:
            accepted, replayed = await self._accept_once(submission, task_id, digest)
        except BaseException:
            answer.set_result(None)  # failed: a waiting retry tries for itself
            raise
        else:
            answer.set_result(accepted)
        finally:
            del self.in_flight[task_id]
        return accepted, replayed

    async def _accept_once(
        self, submission: Submission, task_id: str, digest: str
    ) -> tuple[TaskAccepted, bool]:
        if existing := await self._existing(task_id):
            if existing.get("request_sha256") != digest:
                raise _conflict(submission)
            return _accepted(task_id, existing["state"]), True
        return await self._publish(submission, task_id, digest), False

    async def _publish(self, submission: Submission, task_id: str, digest: str) -> TaskAccepted:
        partition, offset = await self.publisher.publish_request(
            {
                "task_id": task_id,
                "kind": submission.kind,
                "inputs": submission.inputs,
                "submitted_at": now_ms(),
                "callback_url": submission.callback_url,
                "deliver_to": submission.deliver_to,
                "tenant": submission.tenant,
                "idempotency_key": submission.idempotency_key,
                "request_sha256": digest,
            }
        )
        self.task_state.remember_written(task_id, offset)
        TASKS_SUBMITTED.labels(kind=submission.kind).inc()
        log.info(
            "task accepted",
            extra={
                "task_id": task_id,
                "kind": submission.kind,
                "partition": partition,
                "offset": offset,
            },
        )
        return _accepted(task_id, "PENDING")

    async def accept_document(
        self, submission: Submission, store: BlobStore
    ) -> tuple[TaskAccepted, bool]:
        """``accept`` for a stored document; the document is deleted unless a new task uses it."""
        try:
            accepted, replayed = await self.accept(submission)
        except (ApiError, RequestValidationError):
            await asyncio.to_thread(store.delete, submission.inputs["document_uri"])
            raise
        if replayed:
            await asyncio.to_thread(store.delete, submission.inputs["document_uri"])
        return accepted, replayed

    async def _existing(self, task_id: str) -> dict[str, Any] | None:
        try:
            return await self.task_state.get(task_id)
        except TaskNotFound:
            return None


def _conflict(submission: Submission) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"Idempotency-Key {submission.idempotency_key!r} was used for another request"
    )


def check_destination(deliver_to: str | None, settings: DeliverySettings) -> None:
    """Refuse (422, naming ``deliver_to``) a sink the server's settings do not allow."""
    if deliver_to is None:
        return
    reason = destination_refusal(parse_sink_url(deliver_to), settings)
    if reason is not None:
        error = {"loc": ("body", "deliver_to"), "msg": reason, "type": "destination_not_allowed"}
        raise RequestValidationError([{**error, "input": deliver_to}])


def _accepted(task_id: str, status: str) -> TaskAccepted:
    links = TaskLinks(self=f"/v1/tasks/{task_id}", result=f"/v1/tasks/{task_id}/result")
    return TaskAccepted(task_id=task_id, status=status, links=links)  # type: ignore[arg-type]


def _validation_error(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(
        [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
    )


def parse_json_task(body: bytes) -> TaskCreate:
    """Validate a JSON submission; errors name the body's fields."""
    try:
        return _TASK.validate_json(body)
    except ValidationError as exc:
        raise _validation_error(exc) from exc


async def read_document_form(
    request: Request,
    store: BlobStore,
    max_bytes: int,
    form_model: type[DocumentSearchForm] = DocumentSearchForm,
) -> tuple[DocumentSearchForm, dict[str, Any]]:
    """Validate a multipart document-search submission and store its document.

    Returns the form (read as ``form_model``) and the request inputs, whose
    ``document_uri`` names the stored document.
    """
    async with request.form(max_files=1, max_fields=10) as form:
        fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
        upload = form.get("file")
        try:
            task = form_model.model_validate(
                {**fields, "file": upload.filename if isinstance(upload, UploadFile) else None}
            )
        except ValidationError as exc:
            raise _validation_error(exc) from exc
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
    return task, inputs
