"""The API key check compares against every configured key, in constant time."""

from __future__ import annotations

import hmac
from types import SimpleNamespace

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from producer_api import security
from producer_api.core.api_keys import hash_api_key
from producer_api.core.config import ApiSettings
from producer_api.exceptions import Unauthorized

KEYS = {"tenant-a": "key-a", "tenant-b": "key-b", "tenant-c": "key-c"}


def request_with_key(key: str) -> Request:
    spec = ",".join(f"{tenant}:{hash_api_key(key)}" for tenant, key in KEYS.items())
    settings = ApiSettings(auth_enabled=True, keys=SecretStr(spec))
    app = SimpleNamespace(state=SimpleNamespace(settings=settings))
    headers = [(b"x-api-key", key.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "app": app})


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every hmac.compare_digest call the key check makes."""
    seen: list[tuple[str, str]] = []
    compare = hmac.compare_digest

    def recording(a: str, b: str) -> bool:
        seen.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", recording)
    return seen


@pytest.mark.parametrize(("tenant", "key"), [*KEYS.items(), (None, "not-a-key")])
async def test_every_configured_key_is_compared_whatever_matches(
    comparisons: list[tuple[str, str]], tenant: str | None, key: str
) -> None:
    request = request_with_key(key)
    if tenant is None:
        with pytest.raises(Unauthorized):
            await security.current_caller(request)
    else:
        assert (await security.current_caller(request)).tenant == tenant
    digests = {hash_api_key(k) for k in KEYS.values()}
    assert {known for known, _ in comparisons} == digests
    assert len(comparisons) == len(KEYS)
    assert {presented for _, presented in comparisons} == {hash_api_key(key)}


def test_keys_are_compared_as_fixed_length_digests_never_as_sent() -> None:
    table = {hash_api_key("key-a"): "tenant-a"}
    assert security.matching_tenant(hash_api_key("key-a"), table) == "tenant-a"
    assert security.matching_tenant(hash_api_key("key-a" + "x" * 10_000), table) is None
    assert security.matching_tenant("key-a", table) is None
