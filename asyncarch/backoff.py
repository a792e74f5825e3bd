"""Exponential backoff, with full jitter where many parties retry at once.

Full jitter (a uniform draw below the exponential ceiling) keeps callers that
failed together from all coming back at the same moment. Light on purpose:
the client SDK uses it too.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["capped_exponential_s", "full_jitter_s"]

# 2.0 ** 62 is far above any cap and far below float overflow.
_MAX_EXPONENT = 62


def capped_exponential_s(
    attempt: int, initial_s: float, maximum_s: float, factor: float = 2.0
) -> float:
    """``initial_s * factor ** (attempt - 1)``, capped at ``maximum_s``."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    return min(maximum_s, initial_s * factor**exponent)


def full_jitter_s(
    attempt: int,
    initial_s: float,
    maximum_s: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """Uniform in ``[0, capped_exponential_s(attempt, initial_s, maximum_s)]``."""
    return rng() * capped_exponential_s(attempt, initial_s, maximum_s)
