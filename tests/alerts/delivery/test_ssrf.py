"""SSRF rules (docs/threat-model.md): static checks and resolution, with a stubbed resolver."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.delivery import guard
from alerts.delivery.errors import UnsafeUrlError
from alerts.delivery.ssrf import IPAddress, SsrfPolicy, parse_inet_aton

PROD = SsrfPolicy()
DEV = SsrfPolicy(allow_loopback=True)
PUBLIC = ipaddress.ip_address("93.184.215.14")


def stub(table: dict[str, Sequence[str]]) -> guard.Resolver:
    def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in table.get(host, [])]

    return resolve


NOWHERE = stub({})


def test_the_loopback_flag_is_off_by_default() -> None:
    # Loopback receivers only under an explicit development flag.
    assert SsrfPolicy().allow_loopback is False
    assert SsrfPolicy().https_ports == frozenset({443, 8443})


@pytest.mark.parametrize(
    "url",
    [
        # special-purpose addresses
        "https://127.0.0.1/",
        "https://localhost/",
        "https://api.localhost/",
        "https://[::1]/",
        "https://0.0.0.0/",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://172.31.255.255/",
        "https://192.168.1.1/",
        "https://169.254.169.254/latest/meta-data/",
        "https://100.64.0.1/",
        "https://[fc00::1]/",
        "https://[fe80::1%25eth0]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[64:ff9b::a9fe:a9fe]/",
        "https://224.0.0.1/",
        "https://255.255.255.255/",
        # IPv4 in the other forms inet_aton reads, credentials, trailing dots
        "https://2130706433/",
        "https://0x7f000001/",
        "https://017700000001/",
        "https://127.1/",
        "https://127.000.000.001/",
        "https://evil@127.0.0.1/",
        "https://evil@example.org/",
        "https://localhost./",
        "https://127.0.0.1./",
        # schemes and ports other than https on 443/8443
        "file:///etc/passwd",
        "gopher://example.org/",
        "ftp://example.org/",
        "http://example.org/",
        "http://example.org:6379/",
        "https://example.org:6379/",
        "not a url",
        "https:///nohost",
    ],
)
def test_refused_at_registration_in_production(url: str) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        guard.resolve(url, PROD, stub({"example.org": ["93.184.215.14"]}))
    assert caught.value.field in {"url", "url.address"}


def test_a_public_https_url_passes_and_pins_the_resolved_address() -> None:
    target, approved = guard.resolve(
        "https://hooks.example.org:8443/in", PROD, stub({"hooks.example.org": ["93.184.215.14"]})
    )
    assert (target.scheme, target.host, target.port) == ("https", "hooks.example.org", 8443)
    assert approved.address == PUBLIC and approved.allowed_by is None


@pytest.mark.parametrize(
    "addresses",
    [
        ["127.0.0.1"],
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["::ffff:192.168.0.1"],
        ["93.184.215.14", "10.0.0.7"],
        [],
    ],
)
def test_a_name_that_resolves_to_a_private_address_is_refused(addresses: list[str]) -> None:
    # The name looks public; its addresses decide. Every address must pass.
    with pytest.raises(UnsafeUrlError) as caught:
        guard.resolve("https://hooks.example.org/", PROD, stub({"hooks.example.org": addresses}))
    assert caught.value.field == "url.address"


def test_dns_rebinding_is_caught_at_send_time() -> None:
    # Valid at registration, the name later points at loopback.
    answers = {"hooks.example.org": ["93.184.215.14"]}
    resolver = stub(answers)
    guard.resolve("https://hooks.example.org/", PROD, resolver)
    answers["hooks.example.org"] = ["127.0.0.1"]
    with pytest.raises(UnsafeUrlError, match="loopback"):
        guard.resolve("https://hooks.example.org/", PROD, resolver)


def test_the_development_flag_opens_loopback_and_nothing_else() -> None:
    approved = guard.resolve("http://127.0.0.1:8080/x", DEV, NOWHERE)[1]
    assert approved.address == ipaddress.ip_address("127.0.0.1")
    approved = guard.resolve("http://localhost:9/x", DEV, stub({"localhost": ["::1"]}))[1]
    assert approved.address.is_loopback and approved.allowed_by is None
    for url in ("http://10.0.0.1:8080/", "https://169.254.169.254/", "http://[fc00::1]/"):
        with pytest.raises(UnsafeUrlError):
            guard.resolve(url, DEV, NOWHERE)
    # Plain http to a name that resolves to a public address stays refused.
    with pytest.raises(UnsafeUrlError, match="loopback receivers only"):
        guard.resolve(
            "http://hooks.example.org/", DEV, stub({"hooks.example.org": ["93.184.215.14"]})
        )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("example.org", None),
        ("1.2.3.4.5", None),
        ("256.1.1.1", None),
        ("4294967296", None),
        ("08.1.1.1", None),
    ],
)
def test_inet_aton_forms(text: str, expected: str | None) -> None:
    got = parse_inet_aton(text)
    assert (str(got) if got else None) == expected


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.text(alphabet="0123456789.xXabcdef_+-", min_size=1, max_size=20))
def test_inet_aton_agrees_with_the_c_library(text: str) -> None:
    # The system resolver reads numeric hosts with inet_aton(3): our parser must see the same
    # address wherever the C library does, or a literal could slip past as a "host name".
    # (No whitespace: glibc's lax inet_aton stops at a space, but a URL host cannot hold one
    # and getaddrinfo uses the exact variant since glibc 2.28.)
    try:
        expected: str | None = str(ipaddress.IPv4Address(socket.inet_aton(text)))
    except OSError:
        expected = None
    got = parse_inet_aton(text)
    assert (str(got) if got else None) == expected
