"""Which IP addresses a webhook may reach (pure): the IANA special-purpose registries, as data.

A webhook URL makes our server open a connection to an address a care team chose, so only
globally routable unicast addresses are allowed. Python's `is_global` has changed between patch
releases (3.11.7 calls 192.0.0.8 global), so the rules are written out here, each block with the
name IANA gives it:

- every block of the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and the RFCs
  that added blocks since: RFC 7526, 8155, 8190, 9374, 9602, 9637, ...), whatever their
  "globally reachable" column says (anycast relays and translators are not care-team receivers);
- multicast (224.0.0.0/4, ff00::/8) and the deprecated IPv6 site-local fec0::/10;
- every IPv6 address outside 2000::/3, the only range IANA allocates global unicast from;
- every IPv6 form that embeds an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96
  and 64:ff9b:1::/48, 6to4 2002::/16, Teredo 2001::/32), refused outright: the host that finally
  answers is chosen by the embedded address, or by a relay, never by the address we checked.

An operator may allow private networks (`allow_networks`, settings `HV_DELIVERY_ALLOW_CIDRS`)
for receivers on a hospital intranet; only networks inside the private-use blocks 10.0.0.0/8,
172.16.0.0/12, 192.168.0.0/16 and fc00::/7 may be listed, and cloud metadata addresses stay
refused inside them. A decision says which listed network allowed an address, so it can be audited.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class NetworkListError(ValueError):
    """An allow-list entry is malformed or not inside a private-use block.

    Attributes:
        entry: the entry as given.
        reason: what is wrong with it.
    """

    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"{entry!r}: {reason}")
        self.entry = entry
        self.reason = reason


def _blocks(rows: Iterable[tuple[str, str]]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), name) for net, name in rows)


# IANA IPv4 Special-Purpose Address Registry (and multicast, which has its own registry).
IPV4_SPECIAL: Final = _blocks(
    [
        ("0.0.0.0/8", "'this network'"),
        ("10.0.0.0/8", "private-use"),
        ("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private-use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112-v4"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),
        ("192.168.0.0/16", "private-use"),
        ("192.175.48.0/24", "direct delegation AS112 service"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "limited broadcast"),
    ]
)

# IPv6 forms that carry an IPv4 address inside; refused whatever they carry.
IPV6_EMBEDDING: Final = _blocks(
    [
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b::/96", "NAT64 well-known prefix"),
        ("64:ff9b:1::/48", "NAT64 local-use prefix"),
        ("2002::/16", "6to4"),
        ("2001::/32", "Teredo"),
    ]
)

# IANA IPv6 Special-Purpose Address Registry (and multicast, site-local).
IPV6_SPECIAL: Final = _blocks(
    [
        ("::1/128", "loopback"),
        ("::/128", "unspecified"),
        ("100::/64", "discard-only"),
        ("100:0:0:1::/64", "dummy prefix"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2620:4f:8000::/48", "direct delegation AS112 service"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ]
)

_LOW_32_BITS: Final = tuple(
    ipaddress.IPv6Network(n) for n in ("::ffff:0:0/96", "::/96", "64:ff9b::/96")
)
GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
PRIVATE_USE: Final = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv6Network("fc00::/7"),
)
METADATA: Final = frozenset(
    {
        ipaddress.IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack...
        ipaddress.IPv4Address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.IPv6Address("fd00:ec2::254"),  # AWS over IPv6
    }
)


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether an address may be a webhook target.

    Attributes:
        refused: why not, in words (``"6to4 address 2002:7f00:1::1 (embeds 127.0.0.1)"``), or
            None when allowed.
        allowed_by: the operator's allow-listed network that admitted a private address, if any
            (to be audited); None for public and development loopback addresses.
    """

    refused: str | None
    allowed_by: IPNetwork | None = None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an embedding IPv6 form carries (for messages), or None."""
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (the server's is teredo[0])
    if any(address in network for network in _LOW_32_BITS):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None  # 64:ff9b:1::/48 places it where the local network decides


def _special(address: IPAddress) -> str | None:
    blocks = IPV4_SPECIAL if isinstance(address, ipaddress.IPv4Address) else IPV6_SPECIAL
    for network, name in blocks:
        if address in network:
            return name
    return None


def classify(
    address: IPAddress, *, allow_loopback: bool, allow_networks: tuple[IPNetwork, ...] = ()
) -> Decision:
    """Decide whether `address` may be a webhook target.

    Loopback is allowed only with `allow_loopback` (development); cloud metadata addresses never;
    a private-use address only inside one of `allow_networks`.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address):
        for network, name in IPV6_EMBEDDING:
            if address in network and not (address.is_loopback or address.is_unspecified):
                inner = embedded_ipv4(address)
                carried = f" (embeds {inner})" if inner is not None else ""
                return Decision(f"{name} address {address}{carried}")
    if address.is_loopback:
        return Decision(None if allow_loopback else f"loopback address {address}")
    if address in METADATA:
        return Decision(f"cloud metadata address {address}")
    for network in allow_networks:
        if address.version == network.version and address in network:
            return Decision(None, allowed_by=network)
    special = _special(address)
    if special is not None:
        return Decision(f"{special} address {address}")
    if isinstance(address, ipaddress.IPv6Address) and address not in GLOBAL_UNICAST_V6:
        return Decision(f"address {address} outside global unicast 2000::/3")
    if not address.is_global:  # what Python knows beyond our tables
        return Decision(f"not globally routable address {address}")
    return Decision(None)


def parse_allow_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Read an operator's allow-list: networks inside 10/8, 172.16/12, 192.168/16 or fc00::/7.

    Raises:
        NetworkListError: an entry is not a network (host bits set count as malformed), or is not
            inside a private-use block (a public, loopback, link-local or catch-all network).
    """
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError as exc:
            raise NetworkListError(entry, f"not a network in CIDR notation ({exc})") from exc
        if not any(
            network.version == block.version and network.subnet_of(block)  # type: ignore[arg-type]
            for block in PRIVATE_USE
        ):
            raise NetworkListError(
                entry,
                "only networks inside 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 or "
                "fc00::/7 may be allowed",
            )
        networks.append(network)
    return tuple(networks)
