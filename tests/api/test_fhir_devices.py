"""The FHIR Device view reads the device registry (the pairing events hubs report): a device
paired but silent so far is served, one its hub unpaired is ``inactive``, each names its hub as
`parent`, a household cuff is each of its patients' device, and every read is audited. The
dashboard's device list says which are unpaired."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from api.dashboard.routes import COOKIE, SCOPES
from api.fhir.ids import gateway_device_id
from api.fhir_models import validated
from api.tokens import Actor
from careteam import audit_store, device_store, enrolment_store
from devices.wire import PairingEvent
from tests.api.record import CUFF, METER, NOW, Seeded
from tests.api.support import token
from tests.support.record import TEST_ACTOR, follow

THERMOMETER = "0b6b1a7e-0000-5c3a-8e11-7d9f6a2b5c43"


def _report(engine: sa.Engine, seeded: Seeded) -> None:
    """gw-1 reports: the cuff shared by P1 (user 1) and P2 (user 2), a new thermometer of P1's
    (no readings yet), and P1's meter unpaired."""
    at = NOW - timedelta(days=30)
    gone = NOW - timedelta(hours=1)
    with engine.begin() as conn:
        follow(conn, seeded.team_a, "P2", at)
        enrolment_store.enrol_gateway(conn, "gw-1", ["P1", "P2"], actor=TEST_ACTOR, at=at)
        device_store.record_pairings(
            conn,
            "gw-1",
            [
                PairingEvent("e1", "pair", CUFF.id, "blood_pressure", "P1", ((1, "P1"), (2, "P2")),
                             CUFF.manufacturer, CUFF.model, CUFF.serial, CUFF.firmware, at, at),
                PairingEvent("e2", "pair", THERMOMETER, "body_temperature", "P1", (),
                             "Braun", "T-1", "TH-9", None, at, at),
                PairingEvent("e3", "unpair", METER.id, "glucose", "P1", (), METER.manufacturer,
                             METER.model, METER.serial, METER.firmware, at, gone),
            ],
            at=NOW,
        )  # fmt: skip


def test_devices_come_from_the_registry(
    base_url: str, seeded: Seeded, record_engine: sa.Engine
) -> None:
    _report(record_engine, seeded)
    headers = {"Authorization": "Bearer " + token(Actor.MEMBER, seeded.member_a, "user/*.read")}
    found = httpx.get(f"{base_url}/fhir/Device?patient=P1&_count=50", headers=headers)
    assert found.status_code == 200, found.text
    bundle = validated(found.json())
    devices = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}  # type: ignore[index]
    hub = gateway_device_id("gw-1")
    assert set(devices) == {CUFF.id, METER.id, THERMOMETER, hub}
    thermometer, meter, cuff = devices[THERMOMETER], devices[METER.id], devices[CUFF.id]
    assert thermometer["status"] == "active" and thermometer["serialNumber"] == "TH-9"
    assert thermometer["type"] == {"text": "personal health device: body_temperature"}
    assert meter["status"] == "inactive"  # unpaired on the hub; its readings stay its own
    assert cuff["status"] == "active" and cuff["parent"] == {"reference": f"Device/{hub}"}
    # The household cuff is P2's too (user 2); a silent device is readable by id.
    theirs = httpx.get(f"{base_url}/fhir/Device?patient=P2&_count=50", headers=headers).json()
    assert CUFF.id in {e["resource"]["id"] for e in theirs["entry"]}
    one = httpx.get(f"{base_url}/fhir/Device/{THERMOMETER}", headers=headers)
    assert one.status_code == 200 and validated(one.json())["id"] == THERMOMETER
    with record_engine.connect() as conn:
        reads = [
            e
            for e in audit_store.entries(conn)
            if e.action == "data.read" and e.entity_id == THERMOMETER
        ]
    assert [(e.patient_id, e.outcome) for e in reads] == [("P1", "success")]

    # The dashboard lists the same devices and marks the unpaired one.
    signed_in = {COOKIE: token(Actor.MEMBER, seeded.member_a, SCOPES)}
    page = httpx.get(f"{base_url}/dashboard/patients/P1", cookies=signed_in)
    assert page.status_code == 200, page.text
    rows = page.text.split('<tr class="device">')[1:]
    assert len(rows) == 3 and "TH-9" in page.text
    assert [row.split("</tr>")[0] for row in rows if "(unpaired)" in row] == [
        row.split("</tr>")[0] for row in rows if METER.model in row
    ]
    assert sum("(unpaired)" in row for row in rows) == 1
