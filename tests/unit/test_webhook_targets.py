"""The SSRF guard: which addresses a webhook may reach, decided before any connection."""

from __future__ import annotations

import ipaddress

import httpx
import pytest

from stream_processors.delivery.http import send_webhook
from stream_processors.delivery.targets import address_refusal, parse_networks, resolve_target
from stream_processors.exceptions import WebhookRefused, WebhookTargetUnresolved

REFUSED = {
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",
    "0.0.0.0": "unspecified",
    "224.0.0.251": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "non-public",
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fd00::1": "private",
    "ff02::1": "multicast",
    "::ffff:10.0.0.1": "private",
    "::ffff:127.0.0.1": "loopback",
    "2002:a00:1::1": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::a00:1": "reserved",  # NAT64 of 10.0.0.1
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::1"]


@pytest.mark.parametrize(("address", "category"), REFUSED.items())
def test_non_public_addresses_are_refused(address: str, category: str) -> None:
    ip = ipaddress.ip_address(address)
    reason = address_refusal(ip)
    assert reason is not None and f"{category} address" in reason and str(ip) in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_allowed_networks_open_exactly_what_they_contain() -> None:
    allowed = parse_networks(["127.0.0.1/32", "fd00:1::/32"])
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allowed) is None
    assert address_refusal(ipaddress.ip_address("fd00:1::5"), allowed) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.2"), allowed) is not None
    assert address_refusal(ipaddress.ip_address("::1"), allowed) is not None
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), allowed) is not None


async def _resolver(addresses: list[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list:  # type: ignore[type-arg]
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolve = await _resolver(["10.1.2.3"])
    with pytest.raises(
        WebhookRefused, match=r"hooks\.example\.test refused: 10\.1\.2\.3 is a private"
    ):
        await resolve_target("https://hooks.example.test/x", resolve=resolve)


async def test_the_request_goes_to_the_checked_address_with_the_original_names() -> None:
    resolve = await _resolver(["10.0.0.7", "93.184.216.34"])
    target = await resolve_target("https://Hooks.Example.test:8443/in?a=1", resolve=resolve)
    assert str(target.address) == "93.184.216.34"
    assert str(target.url) == "https://93.184.216.34:8443/in?a=1"
    assert target.host_header == "hooks.example.test:8443"
    assert target.server_name == "hooks.example.test"


async def test_ipv6_literals_need_no_dns() -> None:
    target = await resolve_target("http://[::1]:9000/h", parse_networks(["::1/128"]))
    assert str(target.url) == "http://[::1]:9000/h"
    assert target.host_header == "[::1]:9000" and target.server_name is None


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/x", "file:///etc/passwd", "http:///nohost", "nonsense"]
)
async def test_only_http_urls_with_a_host_are_accepted(url: str) -> None:
    with pytest.raises(WebhookRefused):
        await resolve_target(url)


async def test_an_unknown_name_is_unresolved_not_refused() -> None:
    with pytest.raises(WebhookTargetUnresolved):
        await resolve_target("http://no-such-host.invalid/hook")


async def test_a_refused_callback_sends_nothing() -> None:
    requests: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: requests.append(request) or httpx.Response(200))
    async with httpx.AsyncClient(transport=transport) as client:
        result = await send_webhook(client, "http://10.0.0.1/hook", b"{}", {}, (), 5.0)
    assert requests == []
    assert result.outcome == "refused"
    assert result.error == {
        "type": "WebhookRefused",
        "message": "callback host 10.0.0.1 refused: 10.0.0.1 is a private address",
    }


async def test_a_redirect_is_not_followed() -> None:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(302, headers={"Location": "http://169.254.169.254/latest"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        result = await send_webhook(
            client, "http://127.0.0.1:9/hook", b"{}", {}, parse_networks(["127.0.0.1/32"]), 5.0
        )
    assert len(requests) == 1 and requests[0].headers["host"] == "127.0.0.1:9"
    assert (result.outcome, result.status_code) == ("failed", 302)
    assert result.error is not None and "not followed" in result.error["message"]
