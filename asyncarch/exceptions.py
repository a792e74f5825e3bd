"""The project's base error; each package derives its own errors from it.

Defined in the leaf ``schemas.exceptions`` (so that ``schemas`` imports no
other project package) and re-exported here.
"""

from schemas.exceptions import AsyncarchError

__all__ = ["AsyncarchError", "SinkUrlError"]


class SinkUrlError(AsyncarchError, ValueError):
    """A ``deliver_to`` URL that names no sink (a ValueError, so pydantic reports it)."""
