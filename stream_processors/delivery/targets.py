"""Where a delivery may go: the SSRF guard of webhooks and sinks.

A callback URL or a sink's host comes from whoever submitted the task, so
before any connection its host is resolved and every address is checked. Loopback,
link-local, private, multicast, reserved, unspecified and other non-public
addresses are refused unless an allowed network (``PROCESSOR_WEBHOOK_ALLOWED_NETWORKS``)
contains them. IPv6 addresses that embed an IPv4 one (mapped, 6to4, Teredo)
are judged by that IPv4 address too. The request then goes to the address
that was checked, not to the name, so a second DNS answer cannot redirect it.
Sinks (``delivery/sinks.py``) go through ``checked_address`` the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

from stream_processors.exceptions import WebhookRefused, WebhookTargetUnresolved

__all__ = [
    "IPAddress",
    "IPNetwork",
    "WebhookTarget",
    "address_refusal",
    "checked_address",
    "parse_networks",
    "resolve_target",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

_SCHEMES = {"http": 80, "https": 443}
# Checked in this order, so an address is named by its most specific category.
_CATEGORIES = (
    ("unspecified", "is_unspecified"),
    ("loopback", "is_loopback"),
    ("link-local", "is_link_local"),
    ("multicast", "is_multicast"),
    ("reserved", "is_reserved"),
    ("private", "is_private"),
)


@dataclass(frozen=True)
class WebhookTarget:
    """A checked callback: the URL to connect to (host = the checked address) and the
    names the server must see (``Host`` header, TLS server name)."""

    url: httpx.URL
    host_header: str
    server_name: str | None
    address: IPAddress


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The allowed networks of the settings (``"127.0.0.1/32"``, ``"fd00::/8"``)."""
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def address_refusal(address: IPAddress, allowed: Sequence[IPNetwork] = ()) -> str | None:
    """Why a webhook may not connect to ``address``, or None when it may."""
    if any(address.version == net.version and address in net for net in allowed):
        return None
    # An embedded IPv4 address is what the packets reach (mapped, 6to4, Teredo).
    for candidate in (*_embedded_ipv4(address), address):
        if (category := _category(candidate)) is not None:
            shown = f"{address} ({candidate})" if candidate != address else str(address)
            return f"{shown} is a {category} address"
    return None


async def resolve_target(
    url: str, allowed: Sequence[IPNetwork] = (), resolve: Resolver | None = None
) -> WebhookTarget:
    """Resolve and check a callback URL; the first allowed address is the target.

    Raises:
        WebhookRefused: Not an http(s) URL, or no address it resolves to is allowed.
        WebhookTargetUnresolved: The host name did not resolve (may be transient).
    """
    parsed = _parse(url)
    host = parsed.raw_host.decode("ascii")
    port = parsed.port or _SCHEMES[parsed.scheme]
    return _target(parsed, await checked_address(host, port, allowed, resolve, "callback host"))


async def checked_address(
    host: str,
    port: int,
    allowed: Sequence[IPNetwork] = (),
    resolve: Resolver | None = None,
    what: str = "host",
) -> IPAddress:
    """The first address of ``host`` that a delivery may connect to.

    Raises:
        WebhookRefused: No address it resolves to is allowed.
        WebhookTargetUnresolved: The host name did not resolve (may be transient).
    """
    literal = _ip_literal(host)
    addresses = [literal] if literal is not None else await (resolve or _getaddrinfo)(host, port)
    refusals = []
    for address in addresses:
        reason = address_refusal(address, allowed)
        if reason is None:
            return address
        refusals.append(reason)
    raise WebhookRefused(f"{what} {host} refused: {'; '.join(dict.fromkeys(refusals))}")


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WebhookRefused(f"invalid callback URL: {exc}") from exc
    if parsed.scheme not in _SCHEMES or not parsed.raw_host:
        raise WebhookRefused("a callback URL must be http:// or https:// with a host")
    return parsed


def _target(parsed: httpx.URL, address: IPAddress) -> WebhookTarget:
    host = parsed.raw_host.decode("ascii")
    literal = _ip_literal(host) is not None
    return WebhookTarget(
        url=parsed.copy_with(host=str(address)),
        host_header=parsed.netloc.decode("ascii"),
        server_name=host if parsed.scheme == "https" and not literal else None,
        address=address,
    )


def _category(address: IPAddress) -> str | None:
    for name, attribute in _CATEGORIES:
        if getattr(address, attribute):
            return name
    # e.g. 100.64.0.0/10 (shared address space): neither private nor public.
    return None if address.is_global else "non-public"


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    embedded = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    return [v4 for v4 in embedded if v4 is not None]


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _getaddrinfo(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookTargetUnresolved(f"cannot resolve {host}: {exc}") from exc
    # A link-local IPv6 answer may carry a scope ("fe80::1%eth0"): judge the address.
    found = (ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
    return list(dict.fromkeys(found))
