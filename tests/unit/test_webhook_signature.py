"""Webhook signatures: what the processor signs, the client helper verifies."""

from __future__ import annotations

import json

import pytest

from asyncarch.client import WebhookSignatureError, verify_webhook_signature
from stream_processors.delivery.payload import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    delivery_id,
    signature_header,
    webhook_body,
    webhook_headers,
)

SECRET = "whsec-test-0123456789"
NOW = 1_760_000_000
STATE = {
    "task_id": "t-1",
    "state": "SUCCESS",
    "kind": "similarity",
    "attempt": 1,
    "submitted_at": 1_000,
    "updated_at": 2_000,
    "result": {"output": {"similarity": 0.6}, "model": {"name": "m"}, "worker": "w"},
    "error": None,
    "callback_url": "http://127.0.0.1/hook",
    "history": [],
}


def test_a_signed_body_verifies() -> None:
    body = webhook_body(STATE)
    verify_webhook_signature(SECRET, body, signature_header(SECRET, body, NOW), now=NOW + 10)
    verify_webhook_signature(SECRET.encode(), body, signature_header(SECRET, body, NOW), now=NOW)


def test_header_format_is_timestamp_and_v1_hex() -> None:
    header = signature_header(SECRET, b"{}", NOW)
    t, v1 = header.split(",")
    assert t == f"t={NOW}"
    assert v1.startswith("v1=") and len(v1) == 3 + 64
    int(v1[3:], 16)


@pytest.mark.parametrize(
    "body",
    [
        webhook_body({**STATE, "state": "FAILED"}),
        webhook_body(STATE) + b" ",
        webhook_body(STATE).replace(b"0.6", b"0.9"),
    ],
    ids=["other-status", "trailing-space", "changed-output"],
)
def test_a_tampered_body_is_rejected(body: bytes) -> None:
    header = signature_header(SECRET, webhook_body(STATE), NOW)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(SECRET, body, header, now=NOW)


def test_another_secret_is_rejected() -> None:
    body = webhook_body(STATE)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature("other", body, signature_header(SECRET, body, NOW), now=NOW)


@pytest.mark.parametrize("skew_s", [301, -301, 10_000])
def test_a_stale_or_future_timestamp_is_rejected(skew_s: int) -> None:
    body = webhook_body(STATE)
    header = signature_header(SECRET, body, NOW)
    with pytest.raises(WebhookSignatureError, match="off"):
        verify_webhook_signature(SECRET, body, header, now=NOW + skew_s)
    verify_webhook_signature(SECRET, body, header, tolerance_s=abs(skew_s), now=NOW + skew_s)


def test_a_changed_timestamp_breaks_the_signature() -> None:
    body = webhook_body(STATE)
    header = signature_header(SECRET, body, NOW).replace(f"t={NOW}", f"t={NOW + 1}")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_webhook_signature(SECRET, body, header, now=NOW)


@pytest.mark.parametrize(
    "header", [None, "", "v1=abc", "t=abc,v1=00", f"t={NOW}", f"t={NOW},t={NOW},v1=00", "garbage"]
)
def test_a_malformed_header_is_rejected(header: str | None) -> None:
    with pytest.raises(WebhookSignatureError, match="malformed"):
        verify_webhook_signature(SECRET, b"{}", header, now=NOW)


def test_one_of_several_v1_signatures_may_match_during_secret_rotation() -> None:
    body = webhook_body(STATE)
    new = signature_header("new-secret", body, NOW).split(",")[1]
    header = f"{signature_header(SECRET, body, NOW)},{new}"
    verify_webhook_signature("new-secret", body, header, now=NOW)
    verify_webhook_signature(SECRET, body, header, now=NOW)


def test_the_body_carries_the_result_and_the_delivery_id() -> None:
    body = json.loads(webhook_body(STATE))
    assert body["id"] == delivery_id("t-1")
    assert (body["type"], body["status"], body["kind"]) == (
        "task.succeeded",
        "SUCCESS",
        "similarity",
    )
    assert body["output"] == {"similarity": 0.6}
    assert (body["submitted_at"], body["finished_at"]) == (1_000, 2_000)
    failed = json.loads(
        webhook_body({**STATE, "state": "FAILED", "error": {"type": "X", "message": "m"}})
    )
    assert failed["output"] is None and failed["error"] == {"type": "X", "message": "m"}


def test_headers_of_an_attempt() -> None:
    body = webhook_body(STATE)
    headers = webhook_headers(SECRET, body, NOW, STATE, 2)
    assert headers[DELIVERY_HEADER] == delivery_id("t-1")
    assert headers["Asyncarch-Event"] == "task.succeeded"
    assert headers["Asyncarch-Attempt"] == "2"
    verify_webhook_signature(SECRET, body, headers[SIGNATURE_HEADER], now=NOW)
    assert delivery_id("t-1") == delivery_id("t-1") != delivery_id("t-2")
