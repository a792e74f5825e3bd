"""Errors of the inference workers."""

from asyncarch.exceptions import AsyncarchError

__all__ = ["InvalidTaskInputs", "ModelLoadError", "UnknownTaskKind", "WorkerError"]


class WorkerError(AsyncarchError):
    """Base of the workers' errors."""


class ModelLoadError(WorkerError):
    """The configured model directory cannot be loaded."""


class UnknownTaskKind(WorkerError):
    """No handler is registered for a task's kind."""


class InvalidTaskInputs(WorkerError):
    """A task's inputs do not fit its kind."""
