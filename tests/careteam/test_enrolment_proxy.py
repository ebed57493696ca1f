"""Enrolment attempts behind a reverse proxy: `X-Forwarded-For` names the source only when the
peer is a configured trusted proxy, so the attempt limit counts hubs, not the proxy, and a
client cannot pick its own source by sending the header. Checked on `homevitals enrolment
serve` itself (a subprocess on PostgreSQL), with clients on two loopback addresses: 127.0.0.1
is the configured proxy, 127.0.0.2 anyone else."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from careteam import audit_store
from careteam.errors import InvalidFieldError
from careteam.forwarded import client_address, parse_trusted_proxies
from tests.support.servers import ManagedProcess, free_port

PROXY = "127.0.0.1"
OTHER = "127.0.0.2"  # an untrusted peer (all of 127/8 reaches the loopback interface)


def test_the_forwarded_client_is_believed_only_from_a_trusted_proxy() -> None:
    trusted = parse_trusted_proxies(["10.0.0.0/8", "192.0.2.1, ::1"])
    cases = [
        # (peer, X-Forwarded-For values, source)
        ("198.51.100.1", ["203.0.113.5"], "198.51.100.1"),  # not a proxy: header ignored
        ("10.0.0.1", [], "10.0.0.1"),  # a proxy that names nobody
        ("10.0.0.1", ["203.0.113.5"], "203.0.113.5"),
        ("10.0.0.1", ["6.6.6.6, 203.0.113.5"], "203.0.113.5"),  # the client's own entry
        ("10.0.0.1", ["6.6.6.6", "203.0.113.5, 10.0.0.2"], "203.0.113.5"),  # two proxies
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),  # all trusted: the farthest hop
        ("10.0.0.1", ["203.0.113.5, not-an-address"], "10.0.0.1"),  # the hop that wrote it
        ("::1", ["[2001:db8::7]"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["203.0.113.5"], "203.0.113.5"),  # dual-stack view of IPv4
        ("10.0.0.1", [" 203.0.113.5 ,"], "203.0.113.5"),
    ]
    for peer, forwarded, source in cases:
        assert client_address(peer, forwarded, trusted) == source, (peer, forwarded)
    assert client_address("10.0.0.1", ["203.0.113.5"], ()) == "10.0.0.1"  # none configured
    with pytest.raises(InvalidFieldError) as caught:
        parse_trusted_proxies(["10.0.0.0/33"])
    assert caught.value.field == "trusted_proxies"


def _serve(workdir: Path, pg_url: str, *trusted: str) -> ManagedProcess:
    (workdir / "passwd").write_text("")
    (workdir / "broker.pid").write_text("0")  # never signalled: no code here is good
    port = free_port()
    argv = [sys.executable, "-m", "homevitals", "enrolment", "serve", "--db", pg_url]
    argv += ["--passwd-file", str(workdir / "passwd"), "--broker-pid-file"]
    argv += [str(workdir / "broker.pid"), "--port", str(port)]
    for network in trusted:
        argv += ["--trusted-proxy", network]
    server = ManagedProcess("enrolment", argv, port, workdir)
    server.start()
    return server


@pytest.fixture
def endpoint(pg: sa.Engine, pg_url: str, tmp_path: Path) -> Iterator[str]:
    server = _serve(tmp_path, pg_url, f"{PROXY}/32")
    try:
        yield f"http://{PROXY}:{server.port}/v1/enrol"
    finally:
        server.stop()


def _try(url: str, code: str, *, via: str, forwarded_for: str | None = None) -> int:
    headers = {} if forwarded_for is None else {"x-forwarded-for": forwarded_for}
    transport = httpx.HTTPTransport(local_address=via)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.post(url, json={"code": code}, headers=headers).status_code


def test_behind_the_proxy_each_hub_has_its_own_attempts(pg: sa.Engine, endpoint: str) -> None:
    hub_a, hub_b = "198.51.100.7", "198.51.100.8"
    for _ in range(5):
        assert _try(endpoint, "ZZZZZ-ZZZZZ", via=PROXY, forwarded_for=hub_a) == 403
    assert _try(endpoint, "ZZZZZ-ZZZZZ", via=PROXY, forwarded_for=hub_a) == 429
    # Another hub behind the same proxy is not held up by hub A's failures.
    assert _try(endpoint, "ZZZZZ-ZZZZZ", via=PROXY, forwarded_for=hub_b) == 403
    # Someone who is not the proxy cannot pick a new source for every guess with the header.
    for n in range(5):
        assert _try(endpoint, "ZZZZZ-ZZZZZ", via=OTHER, forwarded_for=f"203.0.113.{n}") == 403
    assert _try(endpoint, "ZZZZZ-ZZZZZ", via=OTHER, forwarded_for="203.0.113.99") == 429
    with pg.connect() as conn:
        sources = [e.source for e in audit_store.entries(conn)]
    assert sources == [hub_a] * 5 + [hub_b] + [OTHER] * 5


def test_without_a_trusted_proxy_the_header_is_ignored(
    pg: sa.Engine, pg_url: str, tmp_path: Path
) -> None:
    """Not even loopback is trusted by default (uvicorn would trust it: its proxy-header
    handling is off here)."""
    server = _serve(tmp_path, pg_url)
    url = f"http://{PROXY}:{server.port}/v1/enrol"
    try:
        for n in range(5):
            assert _try(url, "ZZZZZ-ZZZZZ", via=PROXY, forwarded_for=f"203.0.113.{n}") == 403
        assert _try(url, "ZZZZZ-ZZZZZ", via=PROXY, forwarded_for="203.0.113.99") == 429
    finally:
        server.stop()
    with pg.connect() as conn:
        assert {e.source for e in audit_store.entries(conn)} == {PROXY}
