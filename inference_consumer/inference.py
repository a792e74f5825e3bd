"""Runs a batch of decoded task requests through the model in one forward pass."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from asyncarch.backoff import full_jitter_s
from asyncarch.blobstore import BlobStore
from inference_consumer.exceptions import WorkerError
from inference_consumer.handlers import handler_for

__all__ = ["RetryPolicy", "TaskOutcome", "run_batch", "run_with_retries", "stack_summary"]

log = logging.getLogger(__name__)
Encoder = Callable[[list[str]], torch.Tensor]
ProgressCallback = Callable[[dict[str, Any], float], None]
Span = tuple[int, int] | WorkerError
PROGRESS_CHUNK = 64


@dataclass(frozen=True)
class TaskOutcome:
    """A task's output, or the error that stopped it; ``duration_ms`` is the batch's."""

    request: dict[str, Any]
    output: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    error_stack: str | None = None
    duration_ms: float = 0.0
    attempt: int = 1


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failing forward pass is tried again, and how long to wait between."""

    max_attempts: int = 3
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter before attempt ``attempt + 1``."""
        return full_jitter_s(attempt, self.backoff_s, self.max_backoff_s)


def run_batch(
    requests: Sequence[dict[str, Any]],
    encode: Encoder,
    store: BlobStore | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[TaskOutcome]:
    """Embed every task's texts together, then build each task's output.

    A task whose kind or inputs are invalid fails alone; the rest of the batch
    runs. An error of the forward pass itself propagates (it may be transient).
    With ``on_progress``, the texts are encoded in chunks and a task with many
    texts (a long document) is told its fraction done after each chunk.
    """
    prepared, spans, texts = _prepare(requests, store)
    started = time.perf_counter()
    if not texts:
        vectors = torch.empty(0)
    elif on_progress is None:
        vectors = encode(texts)
    else:
        vectors = _encode_in_chunks(
            texts, list(zip(prepared, spans, strict=True)), encode, on_progress
        )
    duration_ms = (time.perf_counter() - started) * 1000
    return [
        _outcome(request, span, vectors, duration_ms)
        for request, span in zip(prepared, spans, strict=True)
    ]


def _prepare(
    requests: Sequence[dict[str, Any]], store: BlobStore | None
) -> tuple[list[dict[str, Any]], list[Span], list[str]]:
    """Each task's prepared request and the slice of ``texts`` that is its own."""
    texts: list[str] = []
    spans: list[Span] = []
    prepared = []
    for request in requests:
        ready = request
        span: Span
        try:
            handler = handler_for(request["kind"])
            ready = {**request, "inputs": handler.prepare(request["inputs"], store)}
            own = handler.texts(ready["inputs"])
        except WorkerError as exc:
            own, span = [], exc
        else:
            span = (len(texts), len(texts) + len(own))
        prepared.append(ready)
        spans.append(span)
        texts.extend(own)
    return prepared, spans, texts


def _encode_in_chunks(
    texts: list[str],
    tasks: list[tuple[dict[str, Any], Span]],
    encode: Encoder,
    on_progress: ProgressCallback,
) -> torch.Tensor:
    parts = []
    for start in range(0, len(texts), PROGRESS_CHUNK):
        parts.append(encode(texts[start : start + PROGRESS_CHUNK]))
        done = start + PROGRESS_CHUNK
        for request, span in tasks:
            if isinstance(span, tuple) and span[1] - span[0] > PROGRESS_CHUNK:
                fraction = (done - span[0]) / (span[1] - span[0])
                if 0 < fraction < 1:
                    on_progress(request, round(fraction, 3))
    return torch.cat(parts)


def run_with_retries(
    requests: Sequence[dict[str, Any]],
    encode: Encoder,
    policy: RetryPolicy,
    on_retry: Callable[[int, Exception], None],
    store: BlobStore | None = None,
    on_progress: ProgressCallback | None = None,
) -> list[TaskOutcome]:
    """``run_batch``, retried with backoff when the forward pass fails.

    ``on_retry(attempt, error)`` runs before each new attempt (the worker
    publishes RETRYING there). Past the budget every task fails with the error.
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            outcomes = run_batch(requests, encode, store, on_progress)
            return [replace(o, attempt=attempt) for o in outcomes]
        except Exception as exc:  # any failure of the model is retried, then reported
            log.warning("forward pass failed", extra={"attempt": attempt, "error": repr(exc)})
            if attempt == policy.max_attempts:
                return [
                    TaskOutcome(
                        r,
                        error_type="InferenceError",
                        attempt=attempt,
                        error_message=f"{type(exc).__name__}: {exc}",
                        error_stack=stack_summary(exc),
                    )
                    for r in requests
                ]
            on_retry(attempt, exc)
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")


def _outcome(
    request: dict[str, Any],
    span: tuple[int, int] | WorkerError,
    vectors: torch.Tensor,
    duration_ms: float,
) -> TaskOutcome:
    if isinstance(span, WorkerError):
        return TaskOutcome(request, error_type=type(span).__name__, error_message=str(span))
    try:
        output = handler_for(request["kind"]).output(request["inputs"], vectors[span[0] : span[1]])
    except Exception as exc:  # a handler bug fails its task, not the batch
        return TaskOutcome(
            request,
            error_type="HandlerError",
            error_message=repr(exc),
            error_stack=stack_summary(exc),
        )
    return TaskOutcome(request, output=output, duration_ms=duration_ms)


def stack_summary(exc: BaseException, frames: int = 4) -> str:
    """The innermost frames of an exception's traceback, short enough for a header."""
    lines = traceback.format_exception(exc, limit=-frames)
    return "".join(lines)[-2000:]
