"""The project's base error, and the errors raised while encoding or decoding events.

``AsyncarchError`` lives here because ``schemas`` is the leaf every package
may import; ``asyncarch.exceptions`` re-exports it under its usual name.
"""

__all__ = [
    "AsyncarchError",
    "EventDecodeError",
    "EventEncodeError",
    "SchemaError",
    "SchemaRegistryError",
]


class AsyncarchError(Exception):
    """Base class of every error raised on purpose by asyncarch."""


class SchemaError(AsyncarchError):
    """A schema file is missing or invalid."""


class EventEncodeError(AsyncarchError):
    """A record does not match its schema."""


class EventDecodeError(AsyncarchError):
    """Bytes are not an event this reader can decode."""


class SchemaRegistryError(AsyncarchError):
    """The schema registry could not be reached, or refused a schema: often passing,
    so the event is not at fault (an unknown schema id is an EventDecodeError).

    Transient: a reader retries the event (never dead-letters or skips it), a
    writer refuses for now (the API answers 503) or waits.
    """
