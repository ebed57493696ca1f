"""Which address a request came from, behind reverse proxies the operator trusts (pure).

Failed enrolment attempts are counted per source; behind a reverse proxy every request's peer
is the proxy, so counting peers would limit everyone behind it as one. `X-Forwarded-For` names
the client instead, but anyone can send that header: it is honoured only when the peer is one
of the configured trusted proxies. Each proxy appends the address it received the request from,
so the list is read from the right, skipping trusted proxies; the first address that is not a
trusted proxy is the client, and whatever stands left of it was written by the client itself
and is ignored. An entry that is not an IP address ends the walk at the trusted hop that wrote
it (a broken proxy, or a header it passed through unchecked). With no trusted proxy configured
the peer is the source, whatever the headers say.

The HTTP servers run with uvicorn's own proxy-header handling off (`proxy_headers=False`), so
the peer is the TCP peer and this module is the one place the rule lives.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from careteam.errors import InvalidFieldError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Networks from addresses or CIDR blocks (``10.0.0.5``, ``10.0.0.0/8``, ``::1``);
    commas and spaces separate several in one value.

    Raises:
        InvalidFieldError: field ``trusted_proxies``, naming the value that is not one.
    """
    out: list[Network] = []
    for value in values:
        for item in value.replace(",", " ").split():
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise InvalidFieldError(
                    "trusted_proxies", f"{item!r} is not an IP address or CIDR block"
                ) from None
    return tuple(out)


def _address(text: str) -> IpAddress | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


def _trusted(address: IpAddress, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The request's source: `peer`, or the client a trusted proxy names (see the module).

    `forwarded_for` holds the values of every `X-Forwarded-For` header, in order.
    """
    hop = _address(peer)
    if hop is None or not _trusted(hop, trusted):
        return peer
    entries = [item for value in forwarded_for for item in value.split(",") if item.strip()]
    for entry in reversed(entries):
        address = _address(entry)
        if address is None:
            break  # `hop`, a trusted proxy, wrote something that is not an address
        hop = address
        if not _trusted(hop, trusted):
            break
    return str(hop)
