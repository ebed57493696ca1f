"""Hub enrolment: codes (single use, expiring, same answer for every bad code, attempt limit),
and broker accounts on Debian's Mosquitto with the shipped ACL: a redeemed code's credentials
connect and publish in the hub's own tree only; revocation disconnects the hub for good."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from careteam import audit_store, enrolment, enrolment_store
from careteam.broker import MosquittoPasswordFile, password_hash, sighup_pid
from careteam.enrolment_store import Enrolment, Refusal
from careteam.errors import InvalidFieldError, NotFoundError
from tests.careteam.conftest import T0
from tests.support import servers
from tests.support.broker_config import SERVER_NAME, ShippedBroker
from tests.support.record import TEST_ACTOR, ensure_patient
from tests.support.servers import which

ROOT = Path(__file__).parents[2]


def test_codes_are_forgiving_to_type_and_only_hashed() -> None:
    code = enrolment.format_code(bytes(range(7)))
    assert len(code) == 11 and code[5] == "-"
    assert enrolment.code_digest(code.lower().replace("-", " ")) == enrolment.code_digest(code)
    assert enrolment.normalise_code("oiL00-11111") == "01100" + "11111"
    with pytest.raises(InvalidFieldError):
        enrolment.normalise_code("ABC")


def test_the_hash_is_mosquittos_own() -> None:
    # mosquitto_passwd wrote this line for password "secretpw" (salt and digest kept).
    line = (
        "$7$101$fePv8HdAuJaSq5ba$4di4toNflwLnyODfX7ovnBz38oWAtbFHy/pZVkS3buHooN3V44iFoAAfL00lF"
        "cIgwrq94Vfgd6Ipd+KGHjyS3w=="
    )
    import base64

    salt = base64.b64decode(line.split("$")[3])
    assert password_hash("secretpw", salt) == line


class _Recorder:
    """A `BrokerAccounts` that only records (for tests of the record's logic alone)."""

    def __init__(self) -> None:
        self.accounts: dict[str, str] = {}

    def add(self, username: str, password: str) -> None:
        self.accounts[username] = password

    def remove(self, username: str) -> None:
        self.accounts.pop(username, None)


def _redeem(engine: sa.Engine, code: str, source: str, at: object, accounts: object) -> object:
    with engine.begin() as conn:
        return enrolment_store.redeem(conn, code, source=source, at=at, accounts=accounts)  # type: ignore[arg-type]


def test_codes_are_single_use_expire_and_all_refusals_look_alike(store: sa.Engine) -> None:
    accounts = _Recorder()
    with store.begin() as conn:
        ensure_patient(conn, "p1", T0)
        ensure_patient(conn, "p2", T0)
        issued = enrolment_store.create_code(conn, ["p1", "p2"], actor=TEST_ACTOR, at=T0)
        stale = enrolment_store.create_code(
            conn, ["p1"], actor=TEST_ACTOR, at=T0, ttl=timedelta(minutes=5)
        )
    first = _redeem(store, issued.code, "10.0.0.5", T0 + timedelta(hours=1), accounts)
    assert isinstance(first, Enrolment) and first.mqtt_password
    assert [p.patient_id for p in first.patients] == ["p1", "p2"]
    assert accounts.accounts == {first.gateway_id: first.mqtt_password}
    again = _redeem(store, issued.code, "10.0.0.5", T0 + timedelta(hours=1), accounts)
    t1 = T0 + timedelta(hours=1)
    expired = _redeem(store, stale.code, "10.0.0.5", t1, accounts)
    unknown = _redeem(store, "ZZZZZ-ZZZZZ", "10.0.0.5", t1, accounts)
    garbage = _redeem(store, "not a code", "10.0.0.5", t1, accounts)
    assert again == expired == unknown == garbage == Refusal("invalid_code")
    _redeem(store, "ZZZZZ-ZZZZY", "10.0.0.5", t1, accounts)
    # Five failures from one source: the next attempt is refused before the code is looked at.
    with store.begin() as conn:
        fresh = enrolment_store.create_code(conn, ["p1"], actor=TEST_ACTOR, at=t1)
    limited = _redeem(store, fresh.code, "10.0.0.5", t1, accounts)
    assert isinstance(limited, Refusal) and limited.reason == "rate_limited"
    other_source = _redeem(store, fresh.code, "10.0.0.6", t1, accounts)
    assert isinstance(other_source, Enrolment)
    with store.connect() as conn:
        enrolled = enrolment_store.enrolled_patients(
            conn, [first.gateway_id, other_source.gateway_id, "gw-unknown"]
        )
        refused = [e for e in audit_store.entries(conn) if e.action == "gateway.enrol_refused"]
        assert audit_store.verify(conn).ok
    assert enrolled == {
        first.gateway_id: frozenset({"p1", "p2"}),
        other_source.gateway_id: frozenset({"p1"}),
    }
    assert len(refused) == 5 and {e.source for e in refused} == {"10.0.0.5"}


def test_bad_code_requests_name_the_field(store: sa.Engine) -> None:
    with store.begin() as conn:
        ensure_patient(conn, "p1", T0)
    for patients, kwargs, exc, field in (
        (["nobody"], {}, NotFoundError, "patient_id"),
        ([], {}, InvalidFieldError, "patient_ids"),
        (["p1"], {"ttl": timedelta(days=30)}, InvalidFieldError, "ttl"),
        (["p1"], {"gateway_id": "gw-404"}, NotFoundError, "gateway_id"),
    ):
        with store.begin() as conn, pytest.raises(exc) as caught:
            enrolment_store.create_code(conn, patients, actor=TEST_ACTOR, at=T0, **kwargs)  # type: ignore[arg-type]
        assert caught.value.field == field  # type: ignore[attr-defined]


@pytest.fixture
def broker() -> Iterator[ShippedBroker]:
    """The shipped broker (deploy/mosquitto, verbatim but for ports and paths): enrolment
    writes the gateway listener's password file, passwd-gateways."""
    try:
        which("mosquitto")
    except servers.ServerUnavailableError as exc:
        pytest.skip(str(exc))
    workdir = Path(tempfile.mkdtemp(prefix="hv-enrol-broker-"))  # readable by `mosquitto`
    workdir.chmod(0o755)
    server = ShippedBroker(workdir)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


class _Hub:
    def __init__(self, port: int, username: str, password: str, ca: Path) -> None:
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.dropped = threading.Event()
        self.acks: list[int] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.tls_set_context(ssl.create_default_context(cafile=str(ca)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: self.dropped.set()
        self.client.on_publish = lambda _c, _u, mid, reason, _p: self.acks.append(reason.value)
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(SERVER_NAME, port)
        self.client.loop_start()

    def _on_connect(self, _c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        (self.refused if reason.is_failure else self.connected).set()  # type: ignore[attr-defined]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_enrolment_credentials_on_real_mosquitto_and_revocation(
    pg: sa.Engine, broker: ShippedBroker
) -> None:
    assert broker.process is not None and broker.process.proc is not None
    passwd = broker.config_dir / "passwd-gateways"
    assert broker.init("gateway-password", "gw-made-by-init").returncode == 0
    accounts = MosquittoPasswordFile(passwd, sighup_pid(broker.process.proc.pid))
    with pg.begin() as conn:
        ensure_patient(conn, "p1", T0)
        issued = enrolment_store.create_code(conn, ["p1"], actor=TEST_ACTOR, at=T0)
    got = _redeem(pg, issued.code, "192.0.2.1", T0, accounts)
    assert isinstance(got, Enrolment) and got.mqtt_password is not None
    assert "gw-made-by-init" in accounts.usernames()  # existing accounts are kept
    assert got.mqtt_password not in passwd.read_text()
    # The shipped gateway listener for passwords: TLS on 8884, the shipped acl-gateways.
    hub = _Hub(broker.ports[8884], got.mqtt_username, got.mqtt_password, broker.ca)
    try:
        assert hub.connected.wait(10)
        own = hub.client.publish(f"hv/v1/gw/{got.gateway_id}/readings", b"{}", qos=1)
        other = hub.client.publish("hv/v1/gw/gw-someone-else/readings", b"{}", qos=1)
        own.wait_for_publish(5)
        other.wait_for_publish(5)
        # Accepted (0x10: no subscriber yet); not authorised (the shipped ACL on %u).
        assert hub.acks == [0x10, 0x87]
        with pg.begin() as conn:
            enrolment_store.revoke_gateway(
                conn, got.gateway_id, actor=TEST_ACTOR, at=T0, accounts=accounts
            )
        assert hub.dropped.wait(10)  # Mosquitto drops it at the reload
        assert hub.refused.wait(10)  # and refuses its reconnection
        with pg.connect() as conn:
            assert enrolment_store.enrolled_patients(conn, [got.gateway_id]) == {}
    finally:
        hub.close()
