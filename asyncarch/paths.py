"""Where asyncarch keeps files outside the repository."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """Where jars, durable broker data, blobs and the processor's tables live."""
    return Path(os.environ.get("ASYNCARCH_CACHE", Path.home() / ".cache" / "asyncarch"))
