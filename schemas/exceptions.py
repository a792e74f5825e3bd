"""Errors raised while encoding or decoding events."""

from asyncarch.exceptions import AsyncarchError

__all__ = ["EventDecodeError", "EventEncodeError", "SchemaError"]


class SchemaError(AsyncarchError):
    """A schema file is missing or invalid."""


class EventEncodeError(AsyncarchError):
    """A record does not match its schema."""


class EventDecodeError(AsyncarchError):
    """Bytes are not an event this reader can decode."""
