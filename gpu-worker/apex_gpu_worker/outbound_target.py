"""SSRF protection for the URLs the worker connects to on a caller's behalf (a generation's
destination endpoint): the same rules as src/flows/webhooks/outboundTarget.ts. The host is resolved once
here, and the caller connects to that address (object_store.py pins it), so a DNS answer that
changes between check and use cannot slip through."""

import socket
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Callable
from urllib.parse import urlsplit

# IANA special-purpose IPv4 blocks: nothing in them is a public host.
_IPV4_SPECIAL = [ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4",
)]
# IPv6 global unicast is 2000::/3; inside it, protocol assignments (Teredo, ORCHID…) and documentation.
_IPV6_GLOBAL = ip_network("2000::/3")
_IPV6_SPECIAL = [ip_network(n) for n in ("2001::/23", "2001:db8::/32", "3fff::/20")]

Resolver = Callable[..., list]  # socket.getaddrinfo's shape


class UnsafeTarget(ValueError):
    pass


@dataclass(frozen=True)
class OutboundTarget:
    scheme: str
    host: str  # as in the URL, lower case, without brackets
    port: int
    address: str  # the one address every connection goes to


def is_public_address(address: str) -> bool:
    """True for a global unicast address. An IPv4 address wrapped in IPv6 (IPv4-mapped, 6to4) is
    judged by the IPv4 address inside; every other IPv6 form outside 2000::/3 (IPv4-compatible,
    site-local, discard-only, NAT64, unique- and link-local, multicast) is refused. Python's own
    `is_global` is not used: it accepts multicast, site-local, NAT64 and ::ffff:0:a.b.c.d."""
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    if ip.version == 4:
        return not any(ip in net for net in _IPV4_SPECIAL)
    embedded = ip.ipv4_mapped or ip.sixtofour
    if embedded:
        return is_public_address(str(embedded))
    return ip in _IPV6_GLOBAL and not any(ip in net for net in _IPV6_SPECIAL)


def resolve_outbound_target(url: str, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> OutboundTarget:
    """The address to connect to for `url`, after checking scheme and address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UnsafeTarget("the URL must be http or https")
    if parts.username or parts.password:
        raise UnsafeTarget("the URL must not carry credentials")
    host = parts.hostname
    if not host:
        raise UnsafeTarget("the URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = host if _is_ip(host) else resolve(host, port)[0][4][0]
    if not allow_private and not is_public_address(address):
        shown = host if address == host else f"{host} (resolved to {address})"
        raise UnsafeTarget(f"{shown} is not a public address (loopback, private, link-local or reserved)")
    return OutboundTarget(parts.scheme, host, port, address)


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
        return True
    except ValueError:
        return False
