"""The shipped broker ACL and limits (deploy/mosquitto), on a real Mosquitto
(docs/threat-model.md)."""

from __future__ import annotations

import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.servers import MosquittoServer

DEPLOY = Path(__file__).parents[2] / "deploy" / "mosquitto"
USERS = {
    "gw-a": "secret-a",
    "gw-b": "secret-b",
    "ingest": "secret-i",
    "ops": "secret-o",
    "gw-b/x": "secret-slash",  # a hostile name: a slash to reach into gw-b's tree
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    server = MosquittoServer(
        tmp_path_factory.mktemp("mosquitto-secured"),
        users=USERS,
        acl=(DEPLOY / "acl").read_text(),
        # The shipped security.conf, minus settings the generated test config already sets.
        extra_config="\n".join(
            line
            for line in (DEPLOY / "conf.d" / "security.conf").read_text().splitlines()
            if not line.startswith(("allow_anonymous", "persistence"))
        ),
    )
    server.start()
    yield server
    server.stop()


class Peer:
    """A paho MQTT 5 client that records what it receives and its CONNACK."""

    def __init__(
        self, server: MosquittoServer, user: str | None, password: str | None, client_id: str = ""
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
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
        self.client.connect(server.host, server.port)
        self.client.loop_start()
        self.connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()
        return self.pubacks[info.mid]  # on_publish ran before wait_for_publish returned

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _settle() -> None:
    time.sleep(0.5)  # negative results: give a message that should NOT arrive time to arrive


def test_anonymous_and_wrong_password_refused(secured: MosquittoServer) -> None:
    for user, password in ((None, None), ("gw-a", "wrong")):
        peer = Peer(secured, user, password)
        try:
            assert peer.connack is not None and peer.connack.is_failure
            assert peer.connack.value in (0x86, 0x87)  # bad user name or password / not authorized
        finally:
            peer.close()


def test_password_file_is_hashed_and_private(secured: MosquittoServer) -> None:
    passwd = secured.workdir / "passwd"
    mode = stat.S_IMODE(os.stat(passwd).st_mode)
    assert mode in (0o600, 0o640)
    text = passwd.read_text()
    for password in USERS.values():
        assert password not in text
    assert all(line.split(":", 1)[1].startswith("$7$") for line in text.splitlines())


def test_gateway_confined_to_its_own_tree(secured: MosquittoServer) -> None:
    ingest = Peer(secured, "ingest", USERS["ingest"])
    spy = Peer(secured, "gw-b", USERS["gw-b"])
    gw_a = Peer(secured, "gw-a", USERS["gw-a"])
    try:
        ingest.subscribe("hv/v1/gw/+/readings")
        spy.subscribe("#")
        marker = uuid.uuid4().hex.encode()
        # gw-a writing into gw-b's tree: MQTT 5 PUBACK 0x87, nothing reaches ingest.
        assert gw_a.publish("hv/v1/gw/gw-b/readings", marker).value == 0x87
        # gw-a's own tree works and reaches ingest, but not the other gateway.
        assert gw_a.publish("hv/v1/gw/gw-a/readings", marker + b"-own").value == 0x00
        _settle()
        assert ("hv/v1/gw/gw-a/readings", marker + b"-own") in ingest.messages
        assert all(p != marker for _, p in ingest.messages)
        assert spy.messages == []
    finally:
        for peer in (ingest, spy, gw_a):
            peer.close()


def test_no_client_id_takeover(secured: MosquittoServer) -> None:
    ingest = Peer(secured, "ingest", USERS["ingest"], client_id="ingest")
    try:
        intruder = Peer(secured, "gw-a", USERS["gw-a"], client_id="ingest")
        try:
            _settle()
            assert not ingest.disconnected.is_set(), "gw-a's connect kicked ingest off"
        finally:
            intruder.close()
    finally:
        ingest.close()


def test_slash_in_username_cannot_escape(secured: MosquittoServer) -> None:
    # `pattern write hv/v1/gw/%u/readings` with %u = "gw-b/x" expands one level deeper than any
    # gateway's readings topic, which ingest's `+` subscription does not match.
    ingest = Peer(secured, "ingest", USERS["ingest"])
    try:
        ingest.subscribe("hv/v1/gw/+/readings")
        hostile = Peer(secured, "gw-b/x", USERS["gw-b/x"])
        try:
            assert hostile.connack is not None and not hostile.connack.is_failure
            assert hostile.publish("hv/v1/gw/gw-b/readings", b"forged").value == 0x87
            hostile.publish("hv/v1/gw/gw-b/x/readings", b"deeper")
        finally:
            hostile.close()
        _settle()
        assert ingest.messages == []
    finally:
        ingest.close()


def test_sys_topics_only_for_ops(secured: MosquittoServer) -> None:
    gw = Peer(secured, "gw-a", USERS["gw-a"])
    ops = Peer(secured, "ops", USERS["ops"])
    try:
        gw.subscribe("$SYS/#")
        ops.subscribe("$SYS/#")
        _settle()
        assert gw.messages == []
        assert any(t.startswith("$SYS/broker/version") for t, _ in ops.messages)
    finally:
        gw.close()
        ops.close()


def test_oversize_packet_refused_and_broker_survives(secured: MosquittoServer) -> None:
    gw = Peer(secured, "gw-a", USERS["gw-a"])
    try:
        gw.client.publish("hv/v1/gw/gw-a/readings", b"x" * (1024 * 1024 + 1), qos=1)
        assert gw.disconnected.wait(5), "an oversize packet must end the connection"
    finally:
        gw.close()
    again = Peer(secured, "gw-a", USERS["gw-a"])
    try:
        assert again.connack is not None and not again.connack.is_failure
    finally:
        again.close()
