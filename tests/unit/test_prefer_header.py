"""The ``Prefer`` header (RFC 7240): which wait a submit honours."""

from __future__ import annotations

import pytest

from producer_api.prefer import preferred_wait_s


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("wait=5", 5.0),
        ("WAIT = 2.5", 2.5),
        ('wait="7"', 7.0),
        ("respond-async, wait=10", 10.0),
        ("return=minimal; foo=bar, wait=3; x=y", 3.0),
        ("wait=0", 0.0),
        ("wait=100", 30.0),  # at most the API's bound
    ],
)
def test_the_wait_a_client_prefers(header: str, expected: float) -> None:
    assert preferred_wait_s(header, 30.0) == expected


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "respond-async",
        "return=representation",
        "wait",
        "wait=",
        "wait=soon",
        "wait=-1",
        "wait=nan",
        "wait=inf",
        "waiting=5",
    ],
)
def test_no_wait_when_none_is_asked_or_it_is_not_a_number(header: str | None) -> None:
    assert preferred_wait_s(header, 30.0) is None
