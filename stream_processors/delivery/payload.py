"""What a webhook sends: the JSON body of a finished task and its signed headers.

Pure functions, no Faust, no network. The body is built from the task's
terminal state, which never changes, so every attempt of a delivery sends the
same bytes; only the signature's timestamp differs. Receivers verify it with
``asyncarch.client.verify_webhook_signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from asyncarch import __version__

__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "delivery_id",
    "event_type",
    "signature_header",
    "webhook_body",
    "webhook_headers",
]

SIGNATURE_HEADER = "Asyncarch-Signature"
DELIVERY_HEADER = "Asyncarch-Delivery"
EVENT_HEADER = "Asyncarch-Event"
ATTEMPT_HEADER = "Asyncarch-Attempt"
USER_AGENT = f"asyncarch-webhooks/{__version__}"

_EVENT_TYPES = {"SUCCESS": "task.succeeded", "FAILED": "task.failed", "CANCELLED": "task.cancelled"}
_DELIVERY_NAMESPACE = uuid.UUID("5b0f7c2e-4f7a-4c1e-9a64-0d7e1c3f9b21")


def delivery_id(task_id: str) -> str:
    """The delivery's id, the same on every attempt and every replay: receivers dedupe on it."""
    return str(uuid.uuid5(_DELIVERY_NAMESPACE, task_id))


def event_type(state: str) -> str:
    """``task.succeeded``, ``task.failed`` or ``task.cancelled``."""
    return _EVENT_TYPES[state]


def webhook_body(state: Mapping[str, Any]) -> bytes:
    """The JSON body for a task in a terminal state (compact, keys sorted)."""
    result = state.get("result") or {}
    success = state["state"] == "SUCCESS"
    body = {
        "id": delivery_id(state["task_id"]),
        "type": event_type(state["state"]),
        "task_id": state["task_id"],
        "status": state["state"],
        "kind": state.get("kind"),
        "attempt": state.get("attempt") or 0,
        "submitted_at": state.get("submitted_at"),
        "finished_at": state.get("updated_at"),
        "output": result.get("output") if success else None,
        "model": result.get("model") if success else None,
        "error": state.get("error"),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_headers(
    secret: str, body: bytes, timestamp: int, state: Mapping[str, Any], attempt: int
) -> dict[str, str]:
    """Every header of one attempt, the signature included."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret, body, timestamp),
        DELIVERY_HEADER: delivery_id(state["task_id"]),
        EVENT_HEADER: event_type(state["state"]),
        ATTEMPT_HEADER: str(attempt),
    }
