"""The ``Prefer`` request header (RFC 7240): the one preference the API honours, ``wait``."""

from __future__ import annotations

import math

__all__ = ["preferred_wait_s"]


def preferred_wait_s(header: str | None, max_wait_s: float) -> float | None:
    """Seconds the client prefers to wait for a final answer, at most ``max_wait_s``;
    None when the header asks for no wait.

    ``Prefer: respond-async, wait=10`` gives 10. As RFC 7240 asks, a preference that
    is not understood (another name, a value that is not a non-negative number) is
    ignored, not refused; the answer's ``Preference-Applied`` shows what was used.
    """
    if not header:
        return None
    for preference in header.split(","):
        name, _, value = preference.split(";", 1)[0].partition("=")
        if name.strip().lower() != "wait":
            continue
        try:
            seconds = float(value.strip().strip('"'))
        except ValueError:
            return None
        if not math.isfinite(seconds) or seconds < 0:
            return None
        return min(seconds, max_wait_s)
    return None
