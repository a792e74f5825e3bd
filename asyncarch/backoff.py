"""Exponential backoff, with full jitter where many parties retry at once.

Full jitter (a uniform draw below the exponential ceiling) keeps callers that
failed together from all coming back at the same moment. Light on purpose:
the client SDK uses it too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Backoff", "capped_exponential_s", "full_jitter_s"]

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


@dataclass
class Backoff:
    """The waits between tries of something unavailable for a while (the schema
    registry): capped exponential, never giving up, back to the first after a success.

    Never giving up is the point: what waits is an event already accepted, and
    skipping it would lose it.
    """

    initial_s: float = 0.5
    maximum_s: float = 10.0
    failures: int = 0

    def next_wait_s(self) -> float:
        """Count a failure; how long to wait before the next try."""
        self.failures += 1
        return capped_exponential_s(self.failures, self.initial_s, self.maximum_s)

    def succeeded(self) -> None:
        """The next failure waits ``initial_s`` again."""
        self.failures = 0
