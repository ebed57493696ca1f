"""Issue 14 finding 1: the shipped broker (deploy/mosquitto) run verbatim on Debian's Mosquitto.

Only ports and paths are substituted (tests/support/broker_config.py says how); the password
files and certificates come from the documented init step, deploy/init.sh. Each listener is
checked for its own authentication, identity-as-username, ACL and limits:

    8883  gateways, client certificates      8884  gateways, passwords      1883  services
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from careteam.broker import check_username
from careteam.errors import InvalidFieldError
from tests.support.broker_config import DEPLOY, SERVER_NAME, SHIPPED_PORTS, ShippedBroker, render
from tests.support.pki import CertificateAuthority
from tests.support.servers import which

SETTLE_S = 0.5  # negative results: time for a message that must NOT arrive to arrive


@pytest.fixture(scope="module")
def broker() -> Iterator[ShippedBroker]:
    which("mosquitto")
    # Outside pytest's 0700 tmp tree: the broker reads its files as the `mosquitto` user.
    workdir = Path(tempfile.mkdtemp(prefix="hv-shipped-broker-"))
    workdir.chmod(0o755)
    b = ShippedBroker(workdir)
    b.prepare()
    for name in ("gw-a", "gw-b", "ingest"):  # a gateway certificate may even say "ingest"
        done = b.init("gateway-cert", name)
        assert done.returncode == 0, done.stderr
    b.passwords = {}  # type: ignore[attr-defined]
    for name in ("gw-c", "gw-d"):
        done = b.init("gateway-password", name)
        assert done.returncode == 0, done.stderr
        b.passwords[name] = done.stdout.strip()  # type: ignore[attr-defined]
    b.start()
    yield b
    b.stop()
    shutil.rmtree(workdir)


def _tls(
    broker: ShippedBroker, gateway: str | None = None, ca: Path | None = None
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca or broker.ca))
    if gateway is not None:
        folder = broker.config_dir / "gateways" / gateway
        ctx.load_cert_chain(str(folder / "client.crt"), str(folder / "client.key"))
    return ctx


class Peer:
    """A paho MQTT 5 client on one listener; records its CONNACK, messages and PUBACKs."""

    def __init__(
        self,
        broker: ShippedBroker,
        port: int,
        *,
        user: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        client_id: str = "",
        host: str = SERVER_NAME,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if tls is not None:
            self.client.tls_set_context(tls)
            self.client.tls_insecure_set(False)
        if user is not None:
            self.client.username_pw_set(user, password)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.pubacks: dict[int, ReasonCode] = {}
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.disconnected.set()
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect(host, broker.ports[port])
        self.client.loop_start()
        self.connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        return self.pubacks[info.mid]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        peer.close()


def _ingest(broker: ShippedBroker, peers: list[Peer], client_id: str = "") -> Peer:
    peer = Peer(broker, 1883, user="ingest", password=broker.ingest_password, client_id=client_id)
    peers.append(peer)
    assert peer.accepted
    return peer


def _cert_gw(broker: ShippedBroker, peers: list[Peer], name: str, client_id: str = "") -> Peer:
    peer = Peer(broker, 8883, tls=_tls(broker, name), client_id=client_id)
    peers.append(peer)
    return peer


def _pw_gw(broker: ShippedBroker, peers: list[Peer], name: str, client_id: str = "") -> Peer:
    password = broker.passwords[name]  # type: ignore[attr-defined]
    peer = Peer(broker, 8884, user=name, password=password, tls=_tls(broker), client_id=client_id)
    peers.append(peer)
    return peer


# --- the file itself --------------------------------------------------------------------------


def test_only_ports_and_paths_are_substituted(broker: ShippedBroker) -> None:
    shipped = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    rendered = broker.conf_path.read_text().splitlines()
    assert len(shipped) == len(rendered)
    changed = [(a, b) for a, b in zip(shipped, rendered, strict=True) if a != b]
    for old, new in changed:
        if old.startswith("listener "):
            assert new == f"listener {broker.ports[int(old.split()[1])]} 127.0.0.1"
        else:
            assert "/mosquitto/" in old
            assert new.replace(str(broker.workdir), "/mosquitto") == old
    assert [line for line in shipped if line.startswith("listener ")] == [
        f"listener {p}" for p in SHIPPED_PORTS
    ]
    assert "include_dir" not in "\n".join(shipped)


def _listening_ports(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket the process holds, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                found.add((address if len(address) == width else "?", int(port, 16)))
    return found


def test_no_listener_beyond_the_shipped_ones(broker: ShippedBroker) -> None:
    # The old layout opened Mosquitto's implicit default listener too: 0.0.0.0:1883 and [::]:1883.
    assert broker.process is not None and broker.process.proc is not None
    loopback = "0100007F"  # 127.0.0.1 in /proc's byte order
    assert _listening_ports(broker.process.proc.pid) == {
        (loopback, port) for port in broker.ports.values()
    }


def test_each_listener_has_its_own_settings() -> None:
    # Every per-listener setting is written under a listener, none before the first one.
    lines = [
        line.split()[0]
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    first = lines.index("listener")
    per_listener = {
        "allow_anonymous",
        "password_file",
        "acl_file",
        "use_username_as_clientid",
        "use_identity_as_username",
        "require_certificate",
        "max_connections",
        "max_qos",
    }
    assert not per_listener & set(lines[:first])
    assert "per_listener_settings" in lines[:first]
    blocks = "\n".join(lines[first:]).split("listener")[1:]
    for block in blocks:
        words = set(block.split())
        assert {"allow_anonymous", "acl_file", "use_username_as_clientid", "max_qos"} <= words
        assert "password_file" in words or "use_identity_as_username" in words


# --- authentication per listener --------------------------------------------------------------


def test_anonymous_and_wrong_passwords_refused_on_every_password_listener(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    cases = [
        (1883, None, None, None),
        (1883, "ingest", "wrong", None),
        (8884, None, None, _tls(broker)),
        (8884, "gw-c", "wrong", _tls(broker)),
        # Credentials belong to one listener: a service password is no gateway's, and back.
        (8884, "ingest", broker.ingest_password, _tls(broker)),
        (1883, "gw-c", broker.passwords["gw-c"], None),  # type: ignore[attr-defined]
    ]
    for port, user, password, tls in cases:
        peer = Peer(broker, port, user=user, password=password, tls=tls)
        peers.append(peer)
        assert peer.connack is not None and peer.connack.value in (0x86, 0x87), (port, user)


def test_password_files_are_hashed_and_private(broker: ShippedBroker) -> None:
    for name in ("passwd-services", "passwd-gateways"):
        path = broker.config_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        text = path.read_text()
        for secret in (broker.ingest_password, broker.ops_password, *broker.passwords.values()):  # type: ignore[attr-defined]
            assert secret not in text
        assert all(line.split(":", 1)[1].startswith("$7$") for line in text.splitlines())
    assert stat.S_IMODE((broker.config_dir / "certs" / "server.key").stat().st_mode) == 0o640
    assert not (broker.config_dir / "certs" / "ca.key").exists()  # the CA key is never mounted


# --- identity and client-id takeover ----------------------------------------------------------


def test_client_id_takeover_impossible_on_every_listener(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    ingest = _ingest(broker, peers, client_id="ingest-1")
    cert_gw = _cert_gw(broker, peers, "gw-a", client_id="anything")
    pw_gw = _pw_gw(broker, peers, "gw-c", client_id="anything")
    assert cert_gw.accepted and pw_gw.accepted
    # Each intruder claims a victim's client id (its user name is what the broker keys on).
    gw_d: dict[str, Any] = {
        "user": "gw-d",
        "password": broker.passwords["gw-d"],  # type: ignore[attr-defined]
        "tls": _tls(broker),
    }
    intruders = [
        Peer(broker, 1883, user="ops", password=broker.ops_password, client_id="ingest"),
        Peer(broker, 1883, user="ops", password=broker.ops_password, client_id="ingest-1"),
        Peer(broker, 8883, tls=_tls(broker, "gw-b"), client_id="gw-a"),
        Peer(broker, 8883, tls=_tls(broker, "gw-b"), client_id="ingest"),
        *(Peer(broker, 8884, client_id=victim, **gw_d) for victim in ("gw-c", "gw-a")),
    ]
    peers.extend(intruders)
    assert all(p.accepted for p in intruders)
    time.sleep(SETTLE_S)
    for victim in (ingest, cert_gw, pw_gw):
        assert not victim.disconnected.is_set()


def test_the_takeover_probe_can_see_a_takeover(broker: ShippedBroker, peers: list[Peer]) -> None:
    # The control: the same identity connecting twice does replace the first session.
    first = _pw_gw(broker, peers, "gw-d")
    second = _pw_gw(broker, peers, "gw-d")
    assert first.accepted and second.accepted
    assert first.disconnected.wait(5)
    assert not second.disconnected.is_set()


# --- ACL per listener -------------------------------------------------------------------------


@pytest.mark.parametrize("listener", [8883, 8884])
def test_gateways_confined_to_their_own_tree(
    broker: ShippedBroker, peers: list[Peer], listener: int
) -> None:
    ingest = _ingest(broker, peers)
    ingest.subscribe("hv/v1/gw/+/readings")
    spy = _cert_gw(broker, peers, "gw-b")
    spy.subscribe("#")
    me = "gw-a" if listener == 8883 else "gw-c"
    gw = _cert_gw(broker, peers, me) if listener == 8883 else _pw_gw(broker, peers, me)
    marker = uuid.uuid4().hex.encode()
    assert gw.publish("hv/v1/gw/gw-b/readings", marker).value == 0x87
    assert gw.publish(f"hv/v1/gw/{me}/readings", marker + b"-own").value == 0x00
    time.sleep(SETTLE_S)
    assert ingest.messages == [(f"hv/v1/gw/{me}/readings", marker + b"-own")]
    assert spy.messages == []


def test_a_gateway_certificate_named_ingest_gets_no_service_rights(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    impostor = _cert_gw(broker, peers, "ingest")
    assert impostor.accepted
    impostor.subscribe("hv/v1/gw/+/readings")
    gw = _cert_gw(broker, peers, "gw-a")
    assert gw.publish("hv/v1/gw/gw-a/readings", b"private").value == 0x00
    assert impostor.publish("hv/v1/gw/gw-a/receipts", b"forged receipt").value == 0x87
    time.sleep(SETTLE_S)
    assert impostor.messages == []


@pytest.mark.parametrize("listener", [8883, 8884])
def test_every_gateway_reads_ingest_status_and_none_can_forge_it(
    broker: ShippedBroker, peers: list[Peer], listener: int
) -> None:
    ingest = _ingest(broker, peers)
    me = "gw-a" if listener == 8883 else "gw-c"
    gw = _cert_gw(broker, peers, me) if listener == 8883 else _pw_gw(broker, peers, me)
    gw.subscribe("hv/v1/ingest/+/status")
    # A gateway pretending ingest is up would make hubs resend into nothing: refused.
    assert gw.publish("hv/v1/ingest/fake/status", b"online").value == 0x87
    assert ingest.publish("hv/v1/ingest/ingest-1/status", b"online").value == 0x00
    time.sleep(SETTLE_S)
    assert gw.messages == [("hv/v1/ingest/ingest-1/status", b"online")]


def test_a_gateway_forwards_its_quarantine_heartbeat_and_pairings_only_into_its_own_tree(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    ingest = _ingest(broker, peers)
    streams = ("quarantine", "heartbeat", "pairings")
    for stream in streams:
        ingest.subscribe(f"hv/v1/gw/+/{stream}")
    gw = _cert_gw(broker, peers, "gw-a")
    for stream in streams:
        assert gw.publish(f"hv/v1/gw/gw-b/{stream}", b"forged").value == 0x87
        assert gw.publish(f"hv/v1/gw/gw-a/{stream}", b"own").value == 0x00
    time.sleep(SETTLE_S)
    assert sorted(ingest.messages) == sorted((f"hv/v1/gw/gw-a/{s}", b"own") for s in streams)


def test_sys_topics_only_for_ops(broker: ShippedBroker, peers: list[Peer]) -> None:
    gw = _cert_gw(broker, peers, "gw-a")
    ops = Peer(broker, 1883, user="ops", password=broker.ops_password)
    peers.append(ops)
    gw.subscribe("$SYS/#")
    ops.subscribe("$SYS/#")
    time.sleep(SETTLE_S)
    assert gw.messages == []
    assert any(t.startswith("$SYS/broker/version") for t, _ in ops.messages)


# --- user names -------------------------------------------------------------------------------


def test_the_init_step_and_enrolment_agree_on_user_names(broker: ShippedBroker) -> None:
    names = ["gw-0042", "a", "a" * 64, "gw.x_y-z", "gw:x", "gw b", "gw/x", "gw+", "#", "", "-gw"]
    for name in names:
        by_init = broker.init("check-name", name).returncode == 0
        try:
            check_username(name)
            by_enrolment = True
        except InvalidFieldError:
            by_enrolment = False
        assert by_init == by_enrolment, name


@pytest.mark.parametrize(
    "name", ["gw-b/x", "gw+", "gw#", "+", "#", "/", "", "-gw", "a" * 65, "gw:x"]
)
def test_hostile_user_names_cannot_be_created(broker: ShippedBroker, name: str) -> None:
    before = (broker.config_dir / "passwd-gateways").read_text()
    for command in ("check-name", "gateway-password", "gateway-cert"):
        done = broker.init(command, name)
        assert done.returncode == 2, (command, done.stdout)
        assert "user name" in done.stderr
    assert (broker.config_dir / "passwd-gateways").read_text() == before
    assert not (broker.config_dir / "gateways" / name).exists() or name in ("", "/")


def test_a_hand_made_slash_user_still_cannot_escape(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    # Defence in depth, for a name added with mosquitto_passwd behind the init step's back:
    # hv/v1/gw/%u/readings with %u = "gw-b/x" is one level deeper than any readings topic.
    passwd = broker.config_dir / "passwd-gateways"
    subprocess.run(
        [which("mosquitto_passwd"), str(passwd), "gw-b/x"],
        input="slash-pw\nslash-pw\n",
        capture_output=True,
        text=True,
        check=True,
    )
    broker.reload()
    time.sleep(SETTLE_S)
    ingest = _ingest(broker, peers)
    ingest.subscribe("hv/v1/gw/+/readings")
    hostile = Peer(broker, 8884, user="gw-b/x", password="slash-pw", tls=_tls(broker))
    peers.append(hostile)
    assert hostile.accepted
    assert hostile.publish("hv/v1/gw/gw-b/readings", b"forged").value == 0x87
    hostile.publish("hv/v1/gw/gw-b/x/readings", b"deeper")
    time.sleep(SETTLE_S)
    assert ingest.messages == []


def test_a_gateway_added_after_start_connects_after_reload(
    broker: ShippedBroker, peers: list[Peer]
) -> None:
    # Enrolment adds gateways to passwd-gateways; SIGHUP makes the running broker read them.
    done = broker.init("gateway-password", "gw-new")
    assert done.returncode == 0, done.stderr
    broker.reload()
    time.sleep(SETTLE_S)
    peer = Peer(broker, 8884, user="gw-new", password=done.stdout.strip(), tls=_tls(broker))
    peers.append(peer)
    assert peer.accepted
    assert peer.publish("hv/v1/gw/gw-new/status", b"online").value in (0x00, 0x10)


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize("listener", [8883, 8884, 1883])
def test_oversize_packet_ends_the_connection_broker_survives(
    broker: ShippedBroker, peers: list[Peer], listener: int
) -> None:
    def connect() -> Peer:
        if listener == 8883:
            return _cert_gw(broker, peers, "gw-a")
        if listener == 8884:
            return _pw_gw(broker, peers, "gw-c")
        return _ingest(broker, peers)

    peer = connect()
    topic = "hv/v1/gw/gw-a/readings" if listener == 8883 else "hv/v1/gw/gw-c/readings"
    peer.client.publish(topic, b"x" * (1024 * 1024 + 1), qos=1)
    assert peer.disconnected.wait(5), "an oversize packet must end the connection"
    assert connect().accepted


# --- TLS --------------------------------------------------------------------------------------


def _handshake(broker: ShippedBroker, port: int, ctx: ssl.SSLContext, name: str) -> None:
    with (
        socket.create_connection(("127.0.0.1", broker.ports[port]), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(b"\x10\x00")  # TLS 1.3 reports a refused client certificate on first read
        tls.recv(1)


def test_handshake_probe_succeeds_with_our_certificate(broker: ShippedBroker) -> None:
    _handshake(broker, 8883, _tls(broker, "gw-a"), SERVER_NAME)  # the control for the refusals
    _handshake(broker, 8884, _tls(broker), SERVER_NAME)


def test_certificate_from_a_foreign_ca_is_refused(broker: ShippedBroker, tmp_path: Path) -> None:
    foreign = CertificateAuthority(tmp_path, "foreign-ca").issue("gw-a")
    ctx = _tls(broker)
    ctx.load_cert_chain(str(foreign.cert), str(foreign.key))
    with pytest.raises(ssl.SSLError, match=r"ALERT_UNKNOWN_CA|EOF occurred"):
        _handshake(broker, 8883, ctx, SERVER_NAME)


def test_the_certificate_listener_refuses_a_connection_without_one(broker: ShippedBroker) -> None:
    with pytest.raises(ssl.SSLError, match=r"ALERT_CERTIFICATE_REQUIRED|EOF occurred"):
        _handshake(broker, 8883, _tls(broker), SERVER_NAME)


@pytest.mark.parametrize("listener", [8883, 8884])
def test_tls_1_1_is_refused(broker: ShippedBroker, listener: int) -> None:
    ctx = _tls(broker, "gw-a")
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our client offer 1.1: the broker must refuse
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
        _handshake(broker, listener, ctx, SERVER_NAME)


def test_client_refuses_a_server_certificate_for_another_name(broker: ShippedBroker) -> None:
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(broker, 8883, _tls(broker, "gw-a"), "mqtt.elsewhere.test")


def test_render_refuses_a_shipped_listener_with_an_address() -> None:
    with pytest.raises(AssertionError, match="must not bind"):
        render("listener 1883 0.0.0.0\n", {1883: 1}, Path("/x"))
