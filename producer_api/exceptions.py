"""Errors of the producer API; each maps to one HTTP status."""

import math

from asyncarch.exceptions import AsyncarchError

__all__ = [
    "ApiError",
    "BrokerUnavailable",
    "BrokersDown",
    "Forbidden",
    "IdempotencyConflict",
    "Overloaded",
    "PayloadTooLarge",
    "ProcessorUnavailable",
    "SchemaRegistryUnavailable",
    "TaskAlreadyFinished",
    "TaskExpired",
    "TaskNotFound",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedDocument",
    "UnsupportedMediaType",
]


class ApiError(AsyncarchError):
    """An error that reaches a client as an RFC 9457 problem body."""

    status = 500
    title = "Internal error"

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error's response."""
        return {"Retry-After": "5"} if self.status == 503 else {}


class BrokerUnavailable(ApiError):
    """Kafka did not acknowledge the request event in time: nothing was accepted."""

    status = 503
    title = "Kafka unavailable"


class BrokersDown(BrokerUnavailable):
    """Every Kafka broker is known to be down: refused at once, nothing was queued.

    The API probes the brokers twice a second, so a retry after one second
    is worth it.
    """

    def headers(self) -> dict[str, str]:
        """Retry soon: the outage is being watched."""
        return {"Retry-After": "1"}


class SchemaRegistryUnavailable(BrokerUnavailable):
    """The schema registry did not tell the id to write the event with: nothing was
    written, nothing accepted. Retried soon: an outage of the registry passes."""

    title = "Schema registry unavailable"

    def headers(self) -> dict[str, str]:
        """Retry soon: the next submit asks the registry again."""
        return {"Retry-After": "2"}


class ProcessorUnavailable(ApiError):
    """The stream processor that answers queries cannot be reached."""

    status = 503
    title = "Task state unavailable"


class TaskNotFound(ApiError):
    """No task with this id was ever accepted."""

    status = 404
    title = "Task not found"


class TaskExpired(ApiError):
    """The task finished and was removed after its retention (TTL) passed."""

    status = 410
    title = "Task expired"


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


class Unauthorized(ApiError):
    """No API key, or one that is not configured."""

    status = 401
    title = "Unauthorized"

    def headers(self) -> dict[str, str]:
        """How to authenticate."""
        return {"WWW-Authenticate": 'Bearer realm="asyncarch"'}


class Forbidden(ApiError):
    """A valid key whose tenant may not use this route."""

    status = 403
    title = "Forbidden"


class IdempotencyConflict(ApiError):
    """An Idempotency-Key was reused with a different request body."""

    status = 409
    title = "Idempotency-Key reused with a different request"


class TooManyRequests(ApiError):
    """The caller is over its rate limit."""

    status = 429
    title = "Too many requests"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        """When the caller may try again, in whole seconds."""
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class Overloaded(ApiError):
    """The workers are too far behind; new tasks would only pile up."""

    status = 503
    title = "Too many tasks waiting"


class UnsupportedMediaType(ApiError):
    """The request body is of a media type this route does not take."""

    status = 415
    title = "Unsupported media type"
