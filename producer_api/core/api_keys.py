"""API keys as configured: SHA-256 hashes per tenant (``API_KEYS``).

A leaf, so that the settings can parse ``API_KEYS`` without importing the
request-time checks in ``producer_api.security``.
"""

from __future__ import annotations

import hashlib

__all__ = ["hash_api_key", "parse_key_hashes"]


def hash_api_key(key: str) -> str:
    """The hex SHA-256 under which a key is configured."""
    return hashlib.sha256(key.encode()).hexdigest()


def parse_key_hashes(spec: str) -> dict[str, str]:
    """``tenant:hash,tenant:hash`` → {hash: tenant}; raises ValueError if malformed."""
    table = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        tenant, _, digest = entry.partition(":")
        if not tenant or len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"API_KEYS entry {entry!r} is not tenant:<sha256 hex>")
        table[digest] = tenant
    return table
