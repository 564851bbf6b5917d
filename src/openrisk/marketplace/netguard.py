"""Outbound URL policy for connectors (SSRF guard).

Only ``http``/``https`` URLs without credentials. Unless private targets are allowed
(``OPENRISK_WEBHOOK_ALLOW_PRIVATE=true``), the host is resolved (``getaddrinfo``) and EVERY address
must be public: loopback, private (RFC 1918, ULA), link-local (incl. cloud metadata
169.254.169.254), shared (100.64/10), multicast, reserved and unspecified addresses are refused.
The check runs when an app is installed or configured, and again before every delivery; the
delivery then connects to an address that was checked (no second DNS lookup to rebind).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL is malformed, uses another scheme, or points at a non-public address."""


@dataclass(frozen=True)
class CheckedTarget:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]  # empty when private targets are allowed (no pinning)


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def parse_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or UnsafeURL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as error:
        raise UnsafeURL("is not a valid URL") from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("must be an http or https URL")
    if not parts.hostname:
        raise UnsafeURL("must name a host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("must not embed credentials")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IP literals resolve to themselves)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise UnsafeURL("host does not resolve") from error
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL("host does not resolve")
    return addresses


async def check_url(url: str, *, allow_private: bool) -> CheckedTarget:
    """Validate ``url`` against the policy above; the addresses returned are safe to use."""
    scheme, host, port = parse_url(url)
    if allow_private:
        return CheckedTarget(url=url, scheme=scheme, host=host, port=port, addresses=())
    addresses = await resolve(host, port)
    for address in addresses:
        if not is_public(ipaddress.ip_address(address)):
            raise UnsafeURL(
                "points at a loopback, private, link-local or reserved address, which is "
                "refused (set OPENRISK_WEBHOOK_ALLOW_PRIVATE=true to allow it)"
            )
    return CheckedTarget(url=url, scheme=scheme, host=host, port=port, addresses=tuple(addresses))
