"""One webhook attempt over HTTP: check the target, POST, classify the answer.

Redirects are never followed, proxies from the environment are not used (the
request must go to the address that was checked), and connections are not
kept alive: a pooled connection to one address could otherwise carry a
request for another host name served there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import httpx

from stream_processors.delivery.deliveries import (
    REFUSED,
    RETRYING,
    AttemptResult,
    classify_response,
)
from stream_processors.delivery.targets import IPNetwork, Resolver, WebhookTarget, resolve_target
from stream_processors.exceptions import WebhookRefused, WebhookTargetUnresolved

__all__ = ["new_http_client", "send_webhook"]

# httpx logs every request's full URL at INFO; a callback URL may carry a token.
logging.getLogger("httpx").setLevel(logging.WARNING)


def new_http_client(timeout_s: float) -> httpx.AsyncClient:
    """The client every attempt of a worker shares."""
    return httpx.AsyncClient(
        timeout=timeout_s,
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_keepalive_connections=0),
    )


async def send_webhook(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allowed: Sequence[IPNetwork],
    timeout_s: float,
    resolve: Resolver | None = None,
) -> AttemptResult:
    """POST ``body`` to ``url`` once, within ``timeout_s`` all told (DNS included)."""
    try:
        async with asyncio.timeout(timeout_s):
            target = await resolve_target(url, allowed, resolve)
            return await _post(client, target, body, headers)
    except WebhookRefused as exc:
        return AttemptResult(REFUSED, error={"type": "WebhookRefused", "message": str(exc)})
    except WebhookTargetUnresolved as exc:
        return AttemptResult(RETRYING, error={"type": "DNSError", "message": str(exc)})
    except (TimeoutError, httpx.TimeoutException):
        message = f"no answer within {timeout_s:g} s"
        return AttemptResult(RETRYING, error={"type": "Timeout", "message": message})
    except httpx.TransportError as exc:
        error = {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
        return AttemptResult(RETRYING, error=error)


async def _post(
    client: httpx.AsyncClient, target: WebhookTarget, body: bytes, headers: Mapping[str, str]
) -> AttemptResult:
    extensions = {"sni_hostname": target.server_name} if target.server_name else {}
    request = client.build_request(
        "POST",
        target.url,
        content=body,
        headers={**headers, "Host": target.host_header},
        extensions=extensions,
    )
    response = await client.send(request, stream=True)
    try:
        return classify_response(response.status_code, response.headers)
    finally:
        await response.aclose()  # the answer's body is not needed
