"""The shipped TLS listener (deploy/mosquitto/mosquitto.conf) on a real Mosquitto: SEC-MQTT-03.

Gateways authenticate with client certificates from our CA; the certificate's CN is the MQTT
user name (`use_identity_as_username`), so the shipped ACL confines each gateway to its tree.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.pki import CertificateAuthority, Issued
from tests.support.servers import ManagedProcess, free_port, which

DEPLOY = Path(__file__).parents[2] / "deploy" / "mosquitto"


def _shipped_tls_block(port: int, ca: Path, cert: Path, key: Path) -> list[str]:
    """The TLS listener block of the shipped config, with this run's port and files."""
    lines = (DEPLOY / "mosquitto.conf").read_text().splitlines()
    start = lines.index("listener 8883")
    block = []
    for line in lines[start:]:
        if not line.strip():
            break
        block.append(line)
    paths = {
        "/mosquitto/certs/ca.crt": str(ca),
        "/mosquitto/certs/server.crt": str(cert),
        "/mosquitto/certs/server.key": str(key),
    }
    out = [f"listener {port} 127.0.0.1"]
    for line in block[1:]:
        text = line
        for shipped, ours in paths.items():
            text = text.replace(shipped, ours)
        out.append(text)
    return out


class Broker:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ca = CertificateAuthority(workdir, "homevitals-ca")
        self.foreign = CertificateAuthority(workdir, "foreign-ca")
        self.server = self.ca.issue(
            "mqtt.homevitals.test", server_names=("mqtt.homevitals.test", "127.0.0.1")
        )
        self.port = free_port()
        acl = workdir / "acl"
        acl.write_text((DEPLOY / "acl").read_text())
        security = [
            line
            for line in (DEPLOY / "conf.d" / "security.conf").read_text().splitlines()
            if line.strip() and not line.startswith("#") and not line.startswith("persistence")
        ]
        config = [
            "per_listener_settings false",
            "log_dest stderr",
            f"acl_file {acl}",
            *(["user root"] if os.geteuid() == 0 else []),
            *security,
            *_shipped_tls_block(self.port, self.ca.cert_path, self.server.cert, self.server.key),
        ]
        conf = workdir / "mosquitto.conf"
        conf.write_text("\n".join(config) + "\n")
        self.process = ManagedProcess(
            "mosquitto-tls", [which("mosquitto"), "-c", str(conf)], self.port, workdir
        )


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = Broker(tmp_path_factory.mktemp("mosquitto-tls"))
    b.process.start()
    yield b
    b.process.stop()


def _context(ca: Path, client: Issued | None, *, hostname_check: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = hostname_check
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


class Client:
    def __init__(self, broker: Broker, ctx: ssl.SSLContext) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.tls_set_context(ctx)
        self.client.tls_insecure_set(False)
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.connected.wait(5)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
        self.connack = rc
        self.connected.set()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(5)

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        return self.pubacks[info.mid]


def _handshake(broker: Broker, ctx: ssl.SSLContext, server_name: str) -> None:
    with (
        socket.create_connection(("127.0.0.1", broker.port), 5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        # TLS 1.3 reports a refused client certificate only on the first read.
        tls.sendall(b"\x10\x00")  # a truncated CONNECT: any answer but an alert is fine
        tls.recv(1)


def test_gateway_certificate_is_its_identity(broker: Broker) -> None:
    ingest = Client(broker, _context(broker.ca.cert_path, broker.ca.issue("ingest")))
    gw_a = Client(broker, _context(broker.ca.cert_path, broker.ca.issue("gw-a")))
    try:
        assert ingest.connack is not None and not ingest.connack.is_failure
        assert gw_a.connack is not None and not gw_a.connack.is_failure
        ingest.subscribe("hv/v1/gw/+/readings")
        assert gw_a.publish("hv/v1/gw/gw-a/readings", b"own").value == 0x00
        assert gw_a.publish("hv/v1/gw/gw-b/readings", b"forged").value == 0x87
        deadline = 50
        while ("hv/v1/gw/gw-a/readings", b"own") not in ingest.messages and deadline:
            threading.Event().wait(0.1)
            deadline -= 1
        assert ingest.messages == [("hv/v1/gw/gw-a/readings", b"own")]
    finally:
        ingest.close()
        gw_a.close()


def test_handshake_probe_succeeds_with_our_certificate(broker: Broker) -> None:
    # The control for the refusals below: the same probe, a good certificate, no error.
    _handshake(broker, _context(broker.ca.cert_path, broker.ca.issue("gw-a")), "127.0.0.1")


def test_certificate_from_a_foreign_ca_is_refused(broker: Broker) -> None:
    ctx = _context(broker.ca.cert_path, broker.foreign.issue("gw-a"))
    with pytest.raises(ssl.SSLError, match=r"ALERT_UNKNOWN_CA|EOF occurred"):  # alert, or hang-up
        _handshake(broker, ctx, "mqtt.homevitals.test")


def test_connection_without_a_client_certificate_is_refused(broker: Broker) -> None:
    with pytest.raises(ssl.SSLError, match=r"ALERT_CERTIFICATE_REQUIRED|EOF occurred"):
        _handshake(broker, _context(broker.ca.cert_path, None), "mqtt.homevitals.test")


def test_tls_1_1_is_refused(broker: Broker) -> None:
    ctx = _context(broker.ca.cert_path, broker.ca.issue("gw-old"))
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let our client offer 1.1: the broker must refuse
    with warnings.catch_warnings():  # offering a deprecated version is the point of the test
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):  # the broker's alert
        _handshake(broker, ctx, "mqtt.homevitals.test")


def test_client_refuses_a_server_certificate_for_another_name(broker: Broker) -> None:
    ctx = _context(broker.ca.cert_path, broker.ca.issue("gw-a"))
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(broker, ctx, "mqtt.elsewhere.test")
