"""The project's base error; each package derives its own errors from it.

Defined in the leaf ``schemas.exceptions`` (so that ``schemas`` imports no
other project package) and re-exported here.
"""

from schemas.exceptions import AsyncarchError

__all__ = ["AsyncarchError"]
