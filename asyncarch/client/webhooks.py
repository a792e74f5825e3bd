"""Checking the signature of a webhook the pipeline sent."""

from __future__ import annotations

import hashlib
import hmac
import time

from asyncarch.client.errors import WebhookSignatureError

__all__ = ["verify_webhook_signature"]


def verify_webhook_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Check a webhook from the pipeline before trusting its body.

    Args:
        secret: The processor's ``PROCESSOR_WEBHOOK_SECRET``.
        body: The request body exactly as received (raw bytes, before parsing).
        header: The ``Asyncarch-Signature`` header: ``t=<unix seconds>,v1=<hex>``.
        tolerance_s: Largest accepted distance between ``t`` and now (replays).
        now: The current Unix time (tests).

    Raises:
        WebhookSignatureError: The signature is not valid for this body, or too old.
    """
    fields = [part.strip().partition("=") for part in (header or "").split(",")]
    signatures = [value for key, _, value in fields if key == "v1"]
    timestamps = [value for key, _, value in fields if key == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise WebhookSignatureError("malformed or missing Asyncarch-Signature header")
    key = secret.encode() if isinstance(secret, str) else secret
    signed = timestamps[0].encode() + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise WebhookSignatureError("signature does not match the body")
    age = (time.time() if now is None else now) - int(timestamps[0])
    if abs(age) > tolerance_s:
        raise WebhookSignatureError(f"signature timestamp is {age:.0f} s off (> {tolerance_s:g} s)")
