"""The public view of a task: a table state turned into a ``TaskStateChanged`` event.

Pure functions, no Faust. The record follows ``schemas/task_state.avsc``: the
state, its timestamps and error, and a summary of the result without
embeddings or passage texts, so the compacted topic stays small.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.codec import codec_for

__all__ = ["EVENT_TYPE", "encode_state_changed", "state_changed_record", "summarize_result"]

EVENT_TYPE = "TaskStateChanged"


def state_changed_record(state: Mapping[str, Any]) -> dict[str, Any]:
    """The ``TaskStateChanged`` record of a task-state table value."""
    return {
        "task_id": state["task_id"],
        "kind": state.get("kind"),
        "state": state["state"],
        "attempt": state.get("attempt") or 0,
        "submitted_at": state.get("submitted_at"),
        "updated_at": _updated_at(state),
        "progress": state.get("progress"),
        "error": _error(state.get("error")),
        "result": summarize_result(state.get("result")) if state["state"] == "SUCCESS" else None,
    }


def encode_state_changed(state: Mapping[str, Any], topic: str | None = None) -> bytes:
    """The Avro bytes of a task's public state (for ``topic``: the registry subject's)."""
    return codec_for(EVENT_TYPE).encode(state_changed_record(state), topic)


def summarize_result(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Scores and sizes of a result; the output's bulk (vectors, texts) is left out."""
    if not result:
        return None
    output = result.get("output") or {}
    model = result.get("model") or {}
    passages = output.get("passages")
    vectors = output.get("vectors")
    return {
        "model": model.get("name", ""),
        "worker": result.get("worker") or "",
        "duration_ms": float(result.get("duration_ms") or 0.0),
        "similarity": output.get("similarity"),
        "vector_count": len(vectors) if vectors is not None else None,
        "dimensions": output.get("dimensions"),
        "passage_count": len(passages) if passages is not None else None,
        "top_score": passages[0]["score"] if passages else None,
    }


def _updated_at(state: Mapping[str, Any]) -> int:
    # A state always has updated_at once any event was applied; 0 guards a malformed value.
    return int(state.get("updated_at") or state.get("submitted_at") or 0)


def _error(error: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not error:
        return None
    return {"type": str(error.get("type", "")), "message": str(error.get("message", ""))}
