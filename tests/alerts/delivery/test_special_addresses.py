"""Issue 14 finding 3: every IANA special-purpose block and every IPv6 form embedding IPv4.

The vectors are written out here, one or more per registry entry (first, inside, last address),
rather than read from the module's tables, so a block dropped from the tables fails a test.
URLs go through the guard as a care team would give them, literal or behind a name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.delivery import guard
from alerts.delivery.errors import UnsafeUrlError
from alerts.delivery.special_addresses import NetworkListError, classify, parse_allow_networks
from alerts.delivery.ssrf import IPAddress, SsrfPolicy

PROD = SsrfPolicy()

# IANA IPv4 Special-Purpose Address Registry, plus multicast.
IPV4_REFUSED = [
    "0.0.0.0",
    "0.1.2.3",
    "0.255.255.255",  # "this network"
    "10.0.0.0",
    "10.255.255.255",  # private-use
    "100.64.0.0",
    "100.127.255.255",  # shared address space
    "127.0.0.1",
    "127.255.255.254",  # loopback
    "169.254.0.1",
    "169.254.169.254",  # link-local, cloud metadata
    "172.16.0.0",
    "172.31.255.255",  # private-use
    "192.0.0.0",
    "192.0.0.8",
    "192.0.0.9",
    "192.0.0.10",
    "192.0.0.170",
    "192.0.0.171",
    "192.0.0.255",  # IETF protocol assignments (dummy, PCP and TURN anycast, NAT64 discovery)
    "192.0.2.1",
    "198.51.100.1",
    "203.0.113.255",  # documentation
    "192.31.196.1",  # AS112-v4
    "192.52.193.1",  # AMT
    "192.88.99.1",
    "192.88.99.2",  # 6to4 relay anycast, 6a44 relay
    "192.168.0.1",
    "192.168.255.255",  # private-use
    "192.175.48.1",  # direct delegation AS112
    "198.18.0.1",
    "198.19.255.255",  # benchmarking
    "224.0.0.1",
    "239.255.255.250",  # multicast
    "240.0.0.1",
    "255.255.255.254",  # reserved
    "255.255.255.255",  # limited broadcast
]

# IANA IPv6 Special-Purpose Address Registry, multicast, site-local, outside 2000::/3.
IPV6_REFUSED = [
    "::1",
    "::",  # loopback, unspecified
    "100::1",
    "100::ffff:ffff:ffff:ffff",  # discard-only
    "100:0:0:1::1",  # dummy prefix
    "2001:1::1",
    "2001:1::2",
    "2001:1::3",  # PCP, TURN, DNS-SD SRP anycast
    "2001:2::1",  # benchmarking
    "2001:3::1",  # AMT
    "2001:4:112::1",  # AS112-v6
    "2001:10::1",
    "2001:20::1",
    "2001:30::1",  # ORCHID, ORCHIDv2, drone remote ID
    "2001:1ff:ffff::1",  # last of IETF protocol assignments 2001::/23
    "2001:db8::1",
    "3fff::1",
    "3fff:fff:ffff::1",  # documentation
    "2620:4f:8000::1",  # direct delegation AS112
    "5f00::1",  # SRv6 SIDs
    "fc00::1",
    "fd00:ec2::254",
    "fdff:ffff::1",  # unique-local, AWS metadata
    "fe80::1",
    "febf::1",  # link-local
    "fec0::1",  # site-local (deprecated)
    "ff02::1",
    "ff0e::1",  # multicast
    "4000::1",
    "1::1",
    "e000::1",  # outside global unicast 2000::/3
]

# IPv6 forms that embed an IPv4 address: refused whatever they carry (public ones too).
EMBEDDING_REFUSED = [
    ("2002:7f00:1::1", "6to4", "127.0.0.1"),
    ("2002:5db8:d70e::1", "6to4", "93.184.215.14"),
    ("64:ff9b::7f00:1", "NAT64 well-known", "127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 well-known", "169.254.169.254"),
    ("64:ff9b::5db8:d70e", "NAT64 well-known", "93.184.215.14"),
    ("64:ff9b:1::a00:1", "NAT64 local-use", None),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo", "127.0.0.1"),
    ("2001:0:5db8:d70e::1", "Teredo", None),
    ("::ffff:127.0.0.1", "IPv4-mapped", "127.0.0.1"),
    ("::ffff:93.184.215.14", "IPv4-mapped", "93.184.215.14"),
    ("::127.0.0.1", "IPv4-compatible", "127.0.0.1"),
    ("::10.0.0.1", "IPv4-compatible", "10.0.0.1"),
]

# Public unicast, including the first addresses past some special blocks.
ALLOWED = [
    "93.184.215.14",
    "1.1.1.1",
    "8.8.8.8",
    "100.128.0.0",  # past shared address space
    "172.32.0.1",  # past 172.16.0.0/12
    "192.0.1.1",  # past 192.0.0.0/24
    "198.20.0.1",  # past benchmarking
    "223.255.255.254",  # last before multicast
    "2606:2800:220:1:248:1893:25c8:1946",
    "2001:4860:4860::8888",
    "2001:200::1",  # past 2001::/23
    "2a00:1450:4001::1",
]


def _url(address: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}/hooks/in"


def _resolver(addresses: Sequence[str]) -> guard.Resolver:
    def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    return resolve


@pytest.mark.parametrize("address", IPV4_REFUSED + IPV6_REFUSED)
def test_special_purpose_addresses_are_refused_literal_and_resolved(address: str) -> None:
    with pytest.raises(UnsafeUrlError) as literal:
        guard.resolve(_url(address), PROD, _resolver([]))
    assert literal.value.field == "url"
    with pytest.raises(UnsafeUrlError) as named:
        guard.resolve("https://hooks.example.org/in", PROD, _resolver([address]))
    assert named.value.field == "url.address"
    assert str(ipaddress.ip_address(address)) in named.value.reason


@pytest.mark.parametrize(("address", "form", "inner"), EMBEDDING_REFUSED)
def test_ipv6_forms_embedding_ipv4_are_refused(address: str, form: str, inner: str | None) -> None:
    for url, resolver in (
        (_url(address), _resolver([])),
        ("https://hooks.example.org/in", _resolver([address])),
    ):
        with pytest.raises(UnsafeUrlError) as caught:
            guard.resolve(url, PROD, resolver)
        assert form in caught.value.reason
        if inner is not None:
            assert f"embeds {inner}" in caught.value.reason


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_is_allowed(address: str) -> None:
    # The control: the refusals above are not the guard refusing everything.
    _, literal = guard.resolve(_url(address), PROD, _resolver([]))
    _, named = guard.resolve("https://hooks.example.org/in", PROD, _resolver([address]))
    assert literal.address == named.address == ipaddress.ip_address(address)
    assert literal.allowed_by is None


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(
    st.one_of(
        st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
        st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
        # Dense near the special blocks' edges: the low and high addresses of IPv4 /8s.
        st.tuples(st.integers(0, 255), st.integers(0, 2**24 - 1)).map(
            lambda t: ipaddress.IPv4Address(t[0] << 24 | t[1])
        ),
    )
)
def test_never_more_permissive_than_python(address: IPAddress) -> None:
    # Whatever we allow, Python's own registry copy calls global too.
    if classify(address, allow_loopback=False).refused is None:
        assert address.is_global


ALLOW = parse_allow_networks(["10.20.0.0/16", "fd12:3456::/48"])
INTRANET = SsrfPolicy(allow_networks=ALLOW)


def test_the_allow_list_is_off_by_default() -> None:
    assert SsrfPolicy().allow_networks == ()
    with pytest.raises(UnsafeUrlError, match=r"private-use address 10\.20\.1\.5"):
        guard.resolve("https://ehr.hospital.internal/in", PROD, _resolver(["10.20.1.5"]))


def test_allow_listed_private_network_is_allowed_and_named() -> None:
    _, approved = guard.resolve(
        "https://ehr.hospital.internal/in", INTRANET, _resolver(["10.20.1.5"])
    )
    assert approved.address == ipaddress.ip_address("10.20.1.5")
    assert approved.allowed_by == ipaddress.ip_network("10.20.0.0/16")
    _, approved = guard.resolve("https://[fd12:3456::7]/in", INTRANET, _resolver([]))
    assert approved.allowed_by == ipaddress.ip_network("fd12:3456::/48")


@pytest.mark.parametrize(
    ("url", "addresses", "why"),
    [
        ("https://ehr.hospital.internal/in", ["10.21.0.1"], "private-use"),  # not listed
        ("https://ehr.hospital.internal/in", ["127.0.0.1"], "loopback"),
        ("https://ehr.hospital.internal/in", ["::ffff:10.20.1.5"], "IPv4-mapped"),
        ("https://ehr.hospital.internal/in", ["64:ff9b::a14:105"], "NAT64"),
        ("https://ehr.hospital.internal/in", ["10.20.1.5", "169.254.169.254"], "cloud metadata"),
        ("http://ehr.hospital.internal/in", ["10.20.1.5"], "plain http"),
        ("https://ehr.hospital.internal:8080/in", ["10.20.1.5"], "port 8080"),
    ],
)
def test_the_allow_list_opens_its_networks_and_nothing_else(
    url: str, addresses: list[str], why: str
) -> None:
    with pytest.raises(UnsafeUrlError, match=why):
        guard.resolve(url, INTRANET, _resolver(addresses))


def test_metadata_stays_refused_inside_an_allowed_network() -> None:
    policy = SsrfPolicy(allow_networks=parse_allow_networks(["fd00::/8"]))
    with pytest.raises(UnsafeUrlError, match="cloud metadata"):
        guard.resolve("https://[fd00:ec2::254]/", policy, _resolver([]))


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("0.0.0.0/0", "only networks inside"),
        ("::/0", "only networks inside"),
        ("127.0.0.0/8", "only networks inside"),
        ("169.254.0.0/16", "only networks inside"),
        ("100.64.0.0/10", "only networks inside"),
        ("8.8.8.0/24", "only networks inside"),
        ("10.0.0.0/7", "only networks inside"),  # wider than 10/8
        ("fe80::/10", "only networks inside"),
        ("10.1.2.3/16", "not a network"),  # host bits set
        ("hospital", "not a network"),
    ],
)
def test_the_allow_list_admits_private_use_networks_only(entry: str, why: str) -> None:
    with pytest.raises(NetworkListError, match=why) as caught:
        parse_allow_networks(["10.20.0.0/16", entry])
    assert caught.value.entry == entry


def test_an_empty_allow_list_is_empty() -> None:
    assert parse_allow_networks([""]) == ()
    assert parse_allow_networks([" 10.0.0.0/8 ", ""]) == (ipaddress.ip_network("10.0.0.0/8"),)
