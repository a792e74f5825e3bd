"""The one wall clock of the events."""

from __future__ import annotations

import time

__all__ = ["now_ms"]


def now_ms() -> int:
    """Now as Avro ``timestamp-millis``: milliseconds since the Unix epoch (UTC)."""
    return int(time.time() * 1000)
