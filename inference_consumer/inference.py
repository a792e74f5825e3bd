"""Runs a batch of decoded task requests through the model in one forward pass."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inference_consumer.exceptions import WorkerError
from inference_consumer.handlers import handler_for

__all__ = ["TaskOutcome", "run_batch"]

Encoder = Callable[[list[str]], torch.Tensor]


@dataclass(frozen=True)
class TaskOutcome:
    """A task's output, or the error that stopped it; ``duration_ms`` is the batch's."""

    request: dict[str, Any]
    output: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0


def run_batch(requests: Sequence[dict[str, Any]], encode: Encoder) -> list[TaskOutcome]:
    """Embed every task's texts together, then build each task's output.

    A task whose kind or inputs are invalid fails alone; the rest of the batch runs.
    """
    texts: list[str] = []
    spans: list[tuple[int, int] | WorkerError] = []
    for request in requests:
        try:
            own = handler_for(request["kind"]).texts(request["inputs"])
        except WorkerError as exc:
            spans.append(exc)
            continue
        spans.append((len(texts), len(texts) + len(own)))
        texts.extend(own)
    started = time.perf_counter()
    vectors = encode(texts) if texts else torch.empty(0)
    duration_ms = (time.perf_counter() - started) * 1000
    return [
        _outcome(request, span, vectors, duration_ms)
        for request, span in zip(requests, spans, strict=True)
    ]


def _outcome(
    request: dict[str, Any],
    span: tuple[int, int] | WorkerError,
    vectors: torch.Tensor,
    duration_ms: float,
) -> TaskOutcome:
    if isinstance(span, WorkerError):
        return TaskOutcome(request, error_type=type(span).__name__, error_message=str(span))
    output = handler_for(request["kind"]).output(request["inputs"], vectors[span[0] : span[1]])
    return TaskOutcome(request, output=output, duration_ms=duration_ms)
