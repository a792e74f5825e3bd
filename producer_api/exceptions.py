"""Errors of the producer API; each maps to one HTTP status."""

from asyncarch.exceptions import AsyncarchError

__all__ = [
    "ApiError",
    "BrokerUnavailable",
    "PayloadTooLarge",
    "ProcessorUnavailable",
    "TaskAlreadyFinished",
    "TaskNotFound",
    "UnsupportedDocument",
]


class ApiError(AsyncarchError):
    """An error that reaches a client as an RFC 9457 problem body."""

    status = 500
    title = "Internal error"


class BrokerUnavailable(ApiError):
    """Kafka did not acknowledge the request event in time: nothing was accepted."""

    status = 503
    title = "Kafka unavailable"


class ProcessorUnavailable(ApiError):
    """The stream processor that answers queries cannot be reached."""

    status = 503
    title = "Task state unavailable"


class TaskNotFound(ApiError):
    """No task with this id was ever accepted."""

    status = 404
    title = "Task not found"


class PayloadTooLarge(ApiError):
    """An uploaded document is over the configured size limit."""

    status = 413
    title = "Document too large"


class UnsupportedDocument(ApiError):
    """An uploaded document is not a txt, md or pdf file by its content."""

    status = 415
    title = "Unsupported document type"


class TaskAlreadyFinished(ApiError):
    """The task reached a terminal state; it can no longer be cancelled."""

    status = 409
    title = "Task already finished"
