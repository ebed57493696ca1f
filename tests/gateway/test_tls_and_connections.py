"""TLS to a real Mosquitto listener (server verified), and connection retries on the air."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from firmware_sims.air import VirtualAir
from gateway.connections import ConnectFailedError, Connector
from gateway.errors import PublishError
from gateway.publisher import MqttConfig, Publisher
from tests.gateway.factories import glucose
from tests.gateway.ingest_peer import IngestPeer
from tests.gateway.sims import make_meter
from tests.support.servers import MosquittoServer, free_port


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(directory: Path, cn: str) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = (
        directory / "ca.pem",
        directory / "cert.pem",
        directory / "key.pem",
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# paho-mqtt 2.2's Client._ssl_wrap_socket lets do_handshake() raise without closing the wrapped
# socket, so each refused handshake of the untrusted client leaves a socket to the garbage
# collector (a ResourceWarning from paho's network thread, not a leak of ours).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_publishing_over_tls_verifies_the_server(tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path / "pki", "hv test CA")
    tls_port = free_port()
    server = MosquittoServer(
        tmp_path / "mq",
        extra_config=(
            f"listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n"
            "tls_version tlsv1.2\n"
        ),
    )
    server.start()
    peer = IngestPeer(server.host, server.port)
    try:
        trusted = Publisher("gw-tls", MqttConfig(server.host, tls_port, tls_ca=ca))
        async with trusted:
            await trusted.wait_connected(10)
            await trusted.publish_batch([glucose(1, gateway_id="gw-tls")])
        peer.wait_for(1)
        other_ca, _, _ = make_pki(tmp_path / "other", "someone else")
        untrusted = Publisher("gw-tls-2", MqttConfig(server.host, tls_port, tls_ca=other_ca))
        async with untrusted:
            with pytest.raises(TimeoutError):
                await untrusted.wait_connected(2)
            with pytest.raises(PublishError, match="not connected"):
                await untrusted.publish_batch([glucose(2, gateway_id="gw-tls-2")])
    finally:
        peer.close()
        server.stop()


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_connect_retries_then_fails_and_a_stuck_adapter_cools_down(air: VirtualAir) -> None:
    meter = make_meter(air)
    await meter.power_on()
    scanner, client = air.backends()
    connector = Connector(
        scanner, client, attempts=2, connect_timeout_s=0.5, backoff_first_s=0.05,
        stuck_after=1, cool_down_s=0.2,
    )  # fmt: skip
    seen = await connector.scan(0.4)
    device = seen[meter.address].device
    await meter.power_off()
    with pytest.raises(ConnectFailedError, match="2 attempts failed"):
        async with connector.connect(device, lambda c: None):
            pass
    assert connector.consecutive_failures == 1
    await meter.power_on()
    assert meter.address in await connector.scan(0.4)  # after the cool-down
    assert connector.consecutive_failures == 0
    async with connector.connect(device, lambda c: None) as connected:
        assert connected.is_connected
