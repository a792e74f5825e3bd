"""The shared backoff: a capped exponential ceiling, and full jitter below it."""

from __future__ import annotations

import pytest

from asyncarch.backoff import Backoff, capped_exponential_s, full_jitter_s
from asyncarch.clock import now_ms


def test_the_ceiling_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    ceilings = [capped_exponential_s(n, 0.1, 1.0) for n in range(1, 7)]
    assert ceilings == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert capped_exponential_s(0, 0.1, 1.0) == pytest.approx(0.1)
    assert capped_exponential_s(10_000, 0.1, 1.0) == 1.0  # no float overflow


def test_full_jitter_draws_uniformly_below_the_ceiling() -> None:
    assert full_jitter_s(3, 0.1, 1.0, rng=lambda: 0.0) == 0.0
    assert full_jitter_s(3, 0.1, 1.0, rng=lambda: 0.5) == pytest.approx(0.2)
    assert all(0 <= full_jitter_s(8, 0.1, 0.5) <= 0.5 for _ in range(50))


def test_now_ms_is_avro_timestamp_millis() -> None:
    assert 1_600_000_000_000 < now_ms() < 4_000_000_000_000


def test_backoff_waits_longer_up_to_its_cap_and_starts_over_after_a_success() -> None:
    backoff = Backoff(initial_s=0.5, maximum_s=4.0)
    assert [backoff.next_wait_s() for _ in range(6)] == pytest.approx([0.5, 1, 2, 4, 4, 4])
    backoff.succeeded()
    assert backoff.next_wait_s() == pytest.approx(0.5)
