"""SSRF rules for care-team webhook URLs (pure: the adapter parses and resolves, this decides).

RELIABILITY.md section 5.3. A webhook URL is user input that makes our server open a connection,
so it is checked twice: at registration (scheme, port, credentials, literal addresses in any
encoding) and at every send, against every address the host resolves to (SEC-SSRF-01/02). The
adapter then connects to the address that was checked, never resolving again (SEC-SSRF-04).

Only globally routable unicast addresses are allowed. IPv4 written the way `inet_aton(3)` reads
it (``2130706433``, ``0x7f000001``, ``017700000001``, ``127.1``) is normalised first
(SEC-SSRF-03), and IPv4 embedded in IPv6 (``::ffff:127.0.0.1``, NAT64 ``64:ff9b::/96``) is
unwrapped. Loopback targets, over plain HTTP on any port, are allowed only when the
development flag `allow_loopback` is set; its default is False (SEC-SSRF-08).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from alerts.delivery.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTPS_PORTS: Final = frozenset({443, 8443})
_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")
_METADATA: Final = frozenset(
    {ipaddress.IPv4Address("169.254.169.254"), ipaddress.IPv6Address("fd00:ec2::254")}
)
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class SsrfPolicy:
    """What webhook targets are allowed.

    Attributes:
        allow_loopback: development/test flag: loopback receivers (127.0.0.0/8, ::1) over HTTP
            on any port. Default False; never set it in a deployment.
        https_ports: ports allowed for HTTPS targets.
    """

    allow_loopback: bool = False
    https_ports: frozenset[int] = field(default=HTTPS_PORTS)


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the static checks; `literal` is set when the host is an IP address."""

    scheme: str
    host: str
    port: int
    literal: IPAddress | None


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


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped or NAT64 IPv6 address, else `address` itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.scope_id is not None:
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def refusal(address: IPAddress, policy: SsrfPolicy) -> str | None:
    """Why `address` may not be a webhook target under `policy`, or None if it may."""
    plain = unwrap(address)
    if plain.is_loopback:
        return None if policy.allow_loopback else f"loopback address {address}"
    if plain in _METADATA:
        return f"cloud metadata address {address}"
    checks = (
        ("unspecified", plain.is_unspecified),
        ("link-local", plain.is_link_local),
        ("multicast", plain.is_multicast),
        (
            "shared (carrier-grade NAT)",
            isinstance(plain, ipaddress.IPv4Address) and plain in _SHARED,
        ),
        ("private", plain.is_private),
        ("reserved", plain.is_reserved),
        ("not globally routable", not plain.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address {address}"
    return None


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


def choose_address(target: Target, addresses: Sequence[IPAddress], policy: SsrfPolicy) -> IPAddress:
    """Pick the address to connect to after resolution (send time), or refuse.

    Every resolved address must be allowed, not just the first: a name that resolves to a
    public and a private address is refused. Targets that are only allowed under the loopback
    flag (http, other ports) must resolve to loopback addresses only.

    Raises:
        UnsafeUrlError: no address, or any address refused (field ``"url.address"``).
    """
    if not addresses:
        raise UnsafeUrlError("url.address", f"{target.host!r} did not resolve")
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            raise UnsafeUrlError("url.address", f"{target.host!r} resolves to a {reason}")
    relaxed = target.scheme == "http" or target.port not in policy.https_ports
    if relaxed and not all(unwrap(a).is_loopback for a in addresses):
        raise UnsafeUrlError(
            "url.address", "http and non-standard ports are allowed for loopback receivers only"
        )
    return addresses[0]
