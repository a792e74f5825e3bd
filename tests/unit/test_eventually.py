"""``eventually``, the one wait of the test suite."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import NotYet, eventually


def test_it_returns_the_first_truthy_value() -> None:
    values = iter([None, 0, "", "done"])
    assert eventually(lambda: next(values), 5, "a value", interval_s=0) == "done"


def test_on_timeout_it_names_what_and_the_last_value_seen() -> None:
    count = itertools.count()
    with pytest.raises(AssertionError, match=r"not within 0.05s: the gate.*NotYet\(seen=\d+\)"):
        eventually(lambda: NotYet(next(count)), 0.05, "the gate", interval_s=0.01)


def test_ignored_exceptions_mean_not_yet_and_others_propagate() -> None:
    answers = iter([ConnectionError("refused"), "up"])

    def probe() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert eventually(probe, 5, "up", interval_s=0, ignoring=(ConnectionError,)) == "up"
    with pytest.raises(AssertionError, match="ConnectionError"):
        eventually(probe_refusing, 0.02, "up", interval_s=0.01, ignoring=(ConnectionError,))
    with pytest.raises(KeyError):
        eventually(lambda: {}["missing"], 5, "a key", interval_s=0)


def probe_refusing() -> str:
    raise ConnectionError("refused")
