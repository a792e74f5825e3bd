"""API keys and tenancy.

Keys are configured as SHA-256 hashes, never in plain text:
``API_KEYS="tenant-a:<sha256 hex of key>,tenant-b:<...>"``. A client sends its
key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The tenant
that created a task owns it: any other tenant gets 404 for it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from producer_api.core.api_keys import hash_api_key, parse_key_hashes
from producer_api.core.config import ApiSettings
from producer_api.exceptions import Unauthorized

__all__ = ["Caller", "CallerDep", "hash_api_key", "matching_tenant", "parse_key_hashes"]


@dataclass(frozen=True)
class Caller:
    """Who is calling: a tenant id, or None when authentication is off."""

    tenant: str | None

    def owns(self, task_tenant: str | None) -> bool:
        """Whether a task created by ``task_tenant`` is visible to this caller."""
        return self.tenant is None or hmac.compare_digest(self.tenant, task_tenant or "")


def _presented_key(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    return request.headers.get("x-api-key")


async def current_caller(request: Request) -> Caller:
    """The caller of this request; raises Unauthorized when auth is on and the key is bad.

    ``async`` so that FastAPI calls it on the event loop, not in its thread pool.
    """
    settings: ApiSettings = request.app.state.settings
    if not settings.auth_enabled:
        return Caller(None)
    key = _presented_key(request)
    if not key:
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'")
    tenant = matching_tenant(hash_api_key(key), settings.key_hashes)
    if tenant is None:
        raise Unauthorized("unknown API key")
    return Caller(tenant)


def matching_tenant(digest: str, key_hashes: dict[str, str]) -> str | None:
    """The tenant whose key hash is ``digest``, or None.

    Compares against every configured hash in constant time and never stops at
    a match, so the time taken tells nothing about which key, if any, matched.
    """
    found = None
    for known, tenant in key_hashes.items():
        if hmac.compare_digest(known, digest):
            found = tenant
    return found


CallerDep = Annotated[Caller, Depends(current_caller)]
