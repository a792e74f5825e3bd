"""When the bench's warm-up rounds stop: every process's CPU per task has settled."""

from __future__ import annotations

from bench.procs import settled, settled_twice


def test_a_broker_still_compiling_is_not_settled() -> None:
    # Measured on a fresh broker: 7.3 -> 4.2 ms per task between two rounds.
    before = {"kafka": 7.3, "processor": 4.6, "worker-1": 3.8}
    after = {"kafka": 4.2, "processor": 4.5, "worker-1": 3.7}
    assert not settled(before, after)


def test_small_moves_within_ten_percent_are_settled() -> None:
    before = {"kafka": 2.5, "processor": 4.6, "worker-1": 3.8}
    after = {"kafka": 2.3, "processor": 4.9, "worker-1": 3.6}
    assert settled(before, after)


def test_tiny_costs_may_move_a_quarter_millisecond() -> None:
    # 0.2 -> 0.4 ms is +100 %, but below the absolute floor.
    assert settled({"redis": 0.2}, {"redis": 0.4})
    assert not settled({"redis": 0.2}, {"redis": 0.5})


def test_a_process_missing_from_one_round_is_not_judged() -> None:
    assert settled({"kafka": 2.0, "gone": 9.0}, {"kafka": 2.1})


def test_one_quiet_round_of_a_compiler_is_not_the_end_of_it() -> None:
    # Measured on a fresh broker, 500 tasks a round: a pause, then 8.0 -> 4.0.
    rounds = [{"kafka": 12.1, "api": 3.7}, {"kafka": 8.4, "api": 3.5}, {"kafka": 8.0, "api": 3.2}]
    assert not settled_twice(rounds, {"kafka"})
    assert not settled_twice([*rounds, {"kafka": 4.0, "api": 3.3}], {"kafka"})
    warm = [*rounds, {"kafka": 4.0}, {"kafka": 3.8}, {"kafka": 3.9}]
    assert settled_twice(warm, {"kafka"})


def test_only_the_watched_processes_count() -> None:
    # The API's cost moves with the load's latency; only the JIT is waited for.
    rounds = [{"kafka": 2.0, "api": 3.0}, {"kafka": 2.1, "api": 5.0}, {"kafka": 2.0, "api": 2.0}]
    assert settled_twice(rounds, {"kafka"})
    assert not settled_twice(rounds[:2], {"kafka"})
