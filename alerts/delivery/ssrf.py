"""SSRF rules for care-team webhook URLs (pure: the adapter parses and resolves, this decides).

SSRF (docs/threat-model.md, webhooks). A webhook URL is user input that makes our server open a
connection, so it is checked twice: at registration (scheme, port, credentials, literal addresses in
any encoding) and at every send, against every address the host resolves to. The adapter
then connects to the address that was checked, never resolving again.

Which addresses are allowed is `special_addresses.classify`: globally routable unicast only, every
IANA special-purpose block and every IPv6 form embedding an IPv4 address refused. IPv4 written
the way `inet_aton(3)` reads it (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``) is
normalised first. Loopback targets, over plain HTTP on any port, are allowed only
when the development flag `allow_loopback` is set; its default is False. Private
networks the operator lists (`allow_networks`) are allowed over https on the usual ports, and
the approval names the network so that its use can be audited.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from alerts.delivery.errors import UnsafeUrlError
from alerts.delivery.special_addresses import IPAddress, IPNetwork, classify

__all__ = ["Approved", "IPAddress", "IPNetwork", "SsrfPolicy", "Target"]

HTTPS_PORTS: Final = frozenset({443, 8443})
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class SsrfPolicy:
    """What webhook targets are allowed.

    Attributes:
        allow_loopback: development/test flag: loopback receivers (127.0.0.0/8, ::1) over HTTP
            on any port. Default False; never set it in a deployment.
        https_ports: ports allowed for HTTPS targets.
        allow_networks: private networks an operator allows (hospital intranets); build it with
            `special_addresses.parse_allow_networks`, which admits private-use blocks only.
            Default empty.
    """

    allow_loopback: bool = False
    https_ports: frozenset[int] = field(default=HTTPS_PORTS)
    allow_networks: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the static checks; `literal` is set when the host is an IP address."""

    scheme: str
    host: str
    port: int
    literal: IPAddress | None


@dataclass(frozen=True, slots=True)
class Approved:
    """The address to connect to, and the allow-listed network that admitted it (to audit)."""

    address: IPAddress
    allowed_by: IPNetwork | None = None


def parse_inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """Read `host` the way `inet_aton(3)` would, or return None if it is not an IPv4 literal.

    Accepts 1 to 4 dot-separated parts in decimal, octal (leading 0) or hex (0x); the last part
    fills the remaining bytes (``127.1`` is 127.0.0.1). Out-of-range values are not literals.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        text = part.lower()
        # Check the characters ourselves: int() also accepts "_", signs and spaces.
        if text.startswith("0x"):
            digits, base, allowed = text[2:], 16, "0123456789abcdef"
        elif len(text) > 1 and text.startswith("0"):
            digits, base, allowed = text[1:], 8, "01234567"
        else:
            digits, base, allowed = text, 10, "0123456789"
        if not digits or any(c not in allowed for c in digits):
            return None  # "0x" alone, "08", "1_0", "+1": not numbers to inet_aton(3)
        numbers.append(int(digits, base))
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (4 - len(head)) + last
    return ipaddress.IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The IP address `host` denotes literally (any IPv4 encoding, bracketed IPv6), or None."""
    text = host.rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return parse_inet_aton(text)


def refusal(address: IPAddress, policy: SsrfPolicy) -> str | None:
    """Why `address` may not be a webhook target under `policy`, or None if it may."""
    return classify(
        address, allow_loopback=policy.allow_loopback, allow_networks=policy.allow_networks
    ).refused


def check_target(
    scheme: str, host: str, port: int | None, has_userinfo: bool, policy: SsrfPolicy
) -> Target:
    """Static checks of a parsed webhook URL (registration time and send time).

    Raises:
        UnsafeUrlError: the scheme is not https (or http under the loopback flag), credentials
            are embedded, the host is empty or a loopback name, the port is not allowed, or the
            host is a literal address that `refusal` rejects.
    """
    scheme = scheme.lower()
    if scheme not in {"https", "http"}:
        raise UnsafeUrlError("url", f"scheme {scheme!r} is not allowed (https only)")
    if scheme == "http" and not policy.allow_loopback:
        raise UnsafeUrlError("url", "plain http is not allowed outside development")
    if has_userinfo:
        raise UnsafeUrlError("url", "credentials in the URL are not allowed")
    name = host.rstrip(".").lower()
    if not name:
        raise UnsafeUrlError("url", "the URL has no host")
    effective_port = port if port is not None else (443 if scheme == "https" else 80)
    literal = literal_address(name)
    loopback_name = name in _LOOPBACK_NAMES or name.endswith(".localhost")
    if literal is not None:
        reason = refusal(literal, policy)
        if reason is not None:
            raise UnsafeUrlError("url", reason)
    elif loopback_name and not policy.allow_loopback:
        raise UnsafeUrlError("url", f"loopback host name {name!r}")
    if scheme == "https" and effective_port not in policy.https_ports and not policy.allow_loopback:
        raise UnsafeUrlError("url", f"port {effective_port} is not allowed")
    return Target(scheme, name, effective_port, literal)


def choose_address(target: Target, addresses: Sequence[IPAddress], policy: SsrfPolicy) -> Approved:
    """Pick the address to connect to after resolution (send time), or refuse.

    Every resolved address must be allowed, not just the first: a name that resolves to a
    public and a private address is refused. Targets that are only allowed under the loopback
    flag (http, other ports) must resolve to loopback addresses only.

    Raises:
        UnsafeUrlError: no address, or any address refused (field ``"url.address"``).
    """
    if not addresses:
        raise UnsafeUrlError("url.address", f"{target.host!r} did not resolve")
    decisions = []
    for address in addresses:
        decision = classify(
            address, allow_loopback=policy.allow_loopback, allow_networks=policy.allow_networks
        )
        if decision.refused is not None:
            raise UnsafeUrlError("url.address", f"{target.host!r} resolves to a {decision.refused}")
        decisions.append(decision)
    relaxed = target.scheme == "http" or target.port not in policy.https_ports
    if relaxed and not all(a.is_loopback for a in addresses):
        raise UnsafeUrlError(
            "url.address", "http and non-standard ports are allowed for loopback receivers only"
        )
    return Approved(addresses[0], decisions[0].allowed_by)
