"""The address blocks the SSRF guard is made of, from contracts/outbound-addresses.json (exported
from src/flows/webhooks/publicAddresses.ts): both languages refuse the same addresses."""

from dataclasses import dataclass
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from .loader import read_contract

ADDRESSES_FILE = "outbound-addresses.json"


@dataclass(frozen=True)
class AddressBlocks:
    ipv4_special: tuple[IPv4Network, ...]  # IANA special-purpose IPv4 blocks: nothing in them is a public host
    ipv6_global: IPv6Network  # global unicast; inside it, ipv6_special is not
    ipv6_special: tuple[IPv6Network, ...]
    ipv4_mapped: IPv6Network  # IPv6 forms carrying an IPv4 address, judged by the address inside
    six_to_four: IPv6Network


@cache
def address_blocks(contracts_dir: Path) -> AddressBlocks:
    blocks = read_contract(contracts_dir, ADDRESSES_FILE)["blocks"]
    return AddressBlocks(
        ipv4_special=tuple(ip_network(n) for n in blocks["ipv4Special"]),
        ipv6_global=ip_network(blocks["ipv6Global"]),
        ipv6_special=tuple(ip_network(n) for n in blocks["ipv6Special"]),
        ipv4_mapped=ip_network(blocks["ipv4Mapped"]),
        six_to_four=ip_network(blocks["sixToFour"]),
    )


def address_examples(contracts_dir: Path) -> dict[str, list[str]]:
    """The addresses that pin the blocks down (public, notPublic, notAddresses), which both
    languages' tests check."""
    return read_contract(contracts_dir, ADDRESSES_FILE)["examples"]
