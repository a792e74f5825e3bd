"""The project's base error; each package derives its own errors from it."""

__all__ = ["AsyncarchError"]


class AsyncarchError(Exception):
    """Base class of every error raised on purpose by asyncarch."""
