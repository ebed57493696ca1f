"""The server's device registry (PostgreSQL and SQLite): a hub's pairing events are kept once,
bring the registry up to date, and are audited in the same transaction for each patient the
device starts or stops serving; the chain verifies afterwards."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from careteam import audit_store, device_store, enrolment_store
from careteam.enrol_cli import app as enrolment_app
from careteam.errors import NotFoundError
from devices.wire import PairingEvent
from tests.careteam.conftest import T0
from tests.support.record import TEST_ACTOR, ensure_patient

HUB = "gw-home"
T1 = T0 + timedelta(hours=1)
CUFF = PairingEvent(
    "e1", "pair", "dev-cuff", "blood_pressure", "p-wang", ((1, "p-wang"), (2, "p-li")),
    "Omron", "HEM-7600", "BP0001", "1.2", T0, T0,
)  # fmt: skip
METER = PairingEvent(
    "e2", "pair", "dev-meter", "glucose", "p-wang", (), "Acme", "GM-1", "GM0001", None, T0, T0
)


@pytest.fixture
def hub(store: sa.Engine) -> sa.Engine:
    with store.begin() as conn:
        for patient in ("p-wang", "p-li", "p-zhao"):
            ensure_patient(conn, patient, T0)
        enrolment_store.enrol_gateway(
            conn, HUB, ["p-wang", "p-li", "p-zhao"], actor=TEST_ACTOR, at=T0
        )
    return store


def _record(engine: sa.Engine, *events: PairingEvent) -> tuple[str, ...]:
    with engine.begin() as conn:
        return device_store.record_pairings(conn, HUB, events, at=T1)


def _device_audit(engine: sa.Engine) -> list[tuple[str, str | None, str | None]]:
    with engine.connect() as conn:
        return [
            (e.action, e.patient_id, e.entity_id)
            for e in audit_store.entries(conn)
            if e.action.startswith("device.")
        ]


def test_pairings_fill_the_registry_and_the_audit_trail_once(hub: sa.Engine) -> None:
    assert _record(hub, CUFF, METER) == ("e1", "e2")
    assert _record(hub, CUFF, METER) == ()  # resent: nothing changes
    with hub.connect() as conn:
        wang = device_store.devices_of_patient(conn, "p-wang")
        li = device_store.devices_of_patient(conn, "p-li")
        assert device_store.devices_of_patient(conn, "p-zhao") == []
    cuff, meter = wang
    assert (cuff.device_id, cuff.kind, cuff.model, cuff.serial, cuff.active) == (
        "dev-cuff", "blood_pressure", "HEM-7600", "BP0001", True,
    )  # fmt: skip
    assert cuff.patients == (("p-wang", 1), ("p-li", 2))  # a shared cuff names both users
    assert meter.patients == (("p-wang", None),)
    assert li == [cuff] and cuff.paired_at == T0 and cuff.updated_at == T1
    assert _device_audit(hub) == [
        ("device.pair", "p-wang", "dev-cuff"),
        ("device.pair", "p-li", "dev-cuff"),
        ("device.pair", "p-wang", "dev-meter"),
    ]
    url = hub.url.render_as_string(hide_password=False)
    listed = CliRunner().invoke(enrolment_app, ["devices", "--patient", "p-li", "--db", url])
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.split("\t")[:5] == [
        HUB, "dev-cuff", "blood_pressure", "HEM-7600 BP0001", "p-wang(user 1) p-li(user 2)",
    ]  # fmt: skip
    both = CliRunner().invoke(enrolment_app, ["devices", "--db", url])
    assert both.exit_code == 2 and "--patient or --gateway" in both.stderr


def test_unpairing_and_moving_a_device_are_audited_for_whom_it_concerns(hub: sa.Engine) -> None:
    _record(hub, CUFF, METER)
    t2 = T0 + timedelta(days=2)
    unpaired = replace(METER, event_id="e3", action="unpair", at=t2)
    # The cuff is paired again, now for one patient only: user 2 is no longer p-li.
    moved = replace(CUFF, event_id="e4", patient_id="p-zhao", user_patients=(), paired_at=t2, at=t2)
    assert _record(hub, unpaired, moved) == ("e3", "e4")
    with hub.connect() as conn:
        meter, cuff = device_store.devices_of_gateway(conn, HUB)
        assert device_store.devices_of_patient(conn, "p-li") == []
        assert [d.device_id for d in device_store.devices_of_patient(conn, "p-wang")] == [
            "dev-meter"
        ]
        assert device_store.device_records(conn, "dev-cuff") == [cuff]
        assert audit_store.verify(conn).ok
    assert (meter.active, meter.unpaired_at, meter.patients) == (False, t2, (("p-wang", None),))
    assert (cuff.active, cuff.patients, cuff.paired_at) == (True, (("p-zhao", None),), t2)
    assert _device_audit(hub)[3:] == [
        ("device.unpair", "p-wang", "dev-meter"),
        ("device.pair", "p-zhao", "dev-cuff"),
        ("device.unpair", "p-wang", "dev-cuff"),
        ("device.unpair", "p-li", "dev-cuff"),
    ]
    with hub.connect() as conn:
        entry = next(e for e in audit_store.entries(conn) if e.action == "device.unpair")
    assert (entry.actor_kind, entry.actor_id, entry.source) == ("gateway", HUB, "mqtt")
    assert '"hub_event_id":"e3"' in entry.detail and "GM0001" not in entry.detail


def test_an_event_that_cannot_be_recorded_leaves_nothing(hub: sa.Engine) -> None:
    stranger = replace(METER, event_id="e9", patient_id="p-unknown")
    with pytest.raises(NotFoundError) as caught:
        _record(hub, METER, stranger)  # ingest refuses such events before; the record too
    assert (caught.value.field, caught.value.value) == ("patient_id", "p-unknown")
    with hub.connect() as conn:
        assert device_store.devices_of_gateway(conn, HUB) == []
    assert _device_audit(hub) == []
