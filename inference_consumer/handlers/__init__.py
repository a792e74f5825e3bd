"""Task kinds: a registry maps each kind to its handler, one module per kind.

A handler prepares a task's inputs (the only step that may do I/O, such as
reading an uploaded document), names the texts the task needs embedded, then
builds the task's output from their vectors. The batcher embeds the texts of every task
in a batch in one forward pass, so adding a kind is one module here.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from asyncarch.blobstore import BlobStore
from inference_consumer.exceptions import UnknownTaskKind

__all__ = ["InlineInputs", "TaskHandler", "handler_for", "register", "registered_kinds"]


class TaskHandler(Protocol):
    """What the batcher needs from a task kind."""

    kind: str

    def prepare(self, inputs: dict[str, Any], store: BlobStore | None) -> dict[str, Any]:
        """Inputs made ready for ``texts`` (may read a document); raises WorkerError."""
        ...

    def texts(self, inputs: dict[str, Any]) -> list[str]:
        """The texts to embed for this task; raises InvalidTaskInputs."""
        ...

    def output(self, inputs: dict[str, Any], vectors: torch.Tensor) -> dict[str, Any]:
        """The task's output record, given one vector per text from ``texts``."""
        ...


class InlineInputs:
    """Base of handlers whose inputs arrive complete in the request."""

    def prepare(self, inputs: dict[str, Any], store: BlobStore | None) -> dict[str, Any]:
        """Inputs need no preparation."""
        return inputs


_REGISTRY: dict[str, TaskHandler] = {}


def register(handler: TaskHandler) -> TaskHandler:
    """Add a handler to the registry under its kind."""
    _REGISTRY[handler.kind] = handler
    return handler


def handler_for(kind: str) -> TaskHandler:
    """The handler of a kind; raises UnknownTaskKind."""
    try:
        return _REGISTRY[kind]
    except KeyError as exc:
        raise UnknownTaskKind(f"no handler for task kind {kind!r}") from exc


def registered_kinds() -> list[str]:
    """Every kind a worker can run."""
    return sorted(_REGISTRY)


from inference_consumer.handlers import document_search, embed, similarity  # noqa: E402,F401  (registration)
