"""Errors of the stream processor."""

from asyncarch.exceptions import AsyncarchError

__all__ = [
    "SinkTrustUnavailable",
    "StreamProcessorError",
    "WebhookRefused",
    "WebhookTargetUnresolved",
]


class StreamProcessorError(AsyncarchError):
    """Base class of the stream processor's errors."""


class WebhookRefused(StreamProcessorError):
    """A callback URL or sink may not be reached (scheme, or an address it resolves to);
    permanent."""


class WebhookTargetUnresolved(StreamProcessorError):
    """A callback's or sink's host name did not resolve; worth retrying."""


class SinkTrustUnavailable(StreamProcessorError):
    """A sink's CA bundle (``DELIVERY_*_CA_BUNDLE``) cannot be loaded: the server's
    configuration, not the receiver, is at fault; retried, as the file may appear."""
