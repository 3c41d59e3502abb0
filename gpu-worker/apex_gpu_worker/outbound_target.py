"""SSRF protection for the URLs the worker connects to on a caller's behalf (a generation's
destination endpoint): the same rules as src/flows/webhooks/outboundTarget.ts, on the same address
blocks (contracts/outbound-addresses.json). The host is resolved once here, and the caller connects
to that address (object_store.py pins it), so a DNS answer that changes between check and use
cannot slip through."""

import socket
from dataclasses import dataclass
from functools import cache
from ipaddress import ip_address
from typing import Callable
from urllib.parse import urlsplit

from .contracts.addresses import AddressBlocks, address_blocks
from .settings import WorkerSettings

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
    blocks = _blocks()
    if ip.version == 4:
        return not any(ip in net for net in blocks.ipv4_special)
    if ip in blocks.ipv4_mapped or ip in blocks.six_to_four:
        return is_public_address(str(ip.ipv4_mapped or ip.sixtofour))
    return ip in blocks.ipv6_global and not any(ip in net for net in blocks.ipv6_special)


@cache
def _blocks() -> AddressBlocks:
    # The guard is called without the worker's settings (object_store.py, the tests): the blocks
    # come from the contracts directory that the settings name.
    return address_blocks(WorkerSettings().contracts_dir)


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
