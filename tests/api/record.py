"""A seeded record for the API tests: two institutions, their teams and members, two patients
with consent grants, stored readings (through ingest's writer) and alerts (through the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alerts.delivery.outbox import enqueue_events
from alerts.engine.runner import Runner
from careteam import registry
from devices.reading import DeviceInfo, Kind, Reading, reading_id_for
from devices.special import Special
from ingest.store import write_batch
from tests.support.record import ensure_patient, follow

NOW = datetime.now(UTC).replace(microsecond=0)
CUFF = DeviceInfo("0b6b1a7e-0000-5c3a-8e11-7d9f6a2b5c41", "Omron", "M7", "C-1", "2.0")
METER = DeviceInfo("0b6b1a7e-0000-5c3a-8e11-7d9f6a2b5c42", "Ascensia", "Contour", "G-1", "1.1")


@dataclass(frozen=True)
class Seeded:
    """Ids of what `seed` made."""

    team_a: str
    team_b: str
    member_a: str  # team A (grant: every kind of P1)
    admin_a: str  # team A's coordinator
    member_b: str  # team B (grant: glucose of P1; every kind of P2)
    inactive_a: str
    bp_reading: str
    glucose_reading: str
    hi_reading: str
    p2_reading: str
    alert_p1: str
    readings: dict[str, Reading]


def reading(
    patient_id: str,
    device: DeviceInfo,
    kind: Kind,
    values: dict[str, float | Special],
    *,
    seq: int,
    at: datetime,
    gateway_id: str = "gw-1",
) -> Reading:
    device_time = (at + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S")
    return Reading(
        reading_id=reading_id_for(
            device_id=device.id, kind=kind, sequence=seq, device_time=device_time
        ),
        patient_id=patient_id,
        gateway_id=gateway_id,
        device=device,
        kind=kind,
        measured_at=at,
        received_at=at + timedelta(seconds=20),
        values=values,
        sequence=seq,
        device_time=device_time,
        device_time_offset_min=480,
        clock_offset_s=1.5,
        context={"meal": "fasting"} if kind is Kind.GLUCOSE else {},
    )


def seed(engine: sa.Engine) -> Seeded:
    at = NOW - timedelta(days=20)
    with engine.begin() as conn:
        inst_a = registry.add_institution(conn, "City Hospital", "hospital_clinic", at)
        inst_b = registry.add_institution(
            conn, "Riverside Health Centre", "community_health_centre", at
        )
        team_a = registry.add_team(conn, inst_a, "Diabetes clinic", at)
        team_b = registry.add_team(conn, inst_b, "Family practice", at)
        member_a = registry.add_member(conn, team_a, "Dr Chen", role="physician", tier=0, at=at)
        admin_a = registry.add_member(
            conn, team_a, "Wu Coordinator", role="coordinator", tier=0, at=at
        )
        member_b = registry.add_member(conn, team_b, "Nurse Lin", role="nurse", tier=0, at=at)
        inactive_a = registry.add_member(conn, team_a, "Dr Former", role="physician", tier=0, at=at)
        conn.execute(
            sa.text("UPDATE care_team_members SET active = false WHERE id = :id"),
            {"id": inactive_a},
        )
        follow(conn, team_a, "P1", at)
        follow(conn, team_b, "P1", at, kinds=("glucose",))
        follow(conn, team_b, "P2", at)
        ensure_patient(conn, "P3", at)
    bp = reading(
        "P1", CUFF, Kind.BLOOD_PRESSURE,
        {"systolic_mmhg": 151.0, "diastolic_mmhg": 94.0, "pulse_per_min": 71.0},
        seq=1, at=NOW - timedelta(days=3),
    )  # fmt: skip
    glucose = reading(
        "P1", METER, Kind.GLUCOSE, {"glucose_mmol_l": 2.6}, seq=1, at=NOW - timedelta(hours=2)
    )
    hi = reading(
        "P1", METER, Kind.GLUCOSE, {"glucose_mmol_l": Special.POSITIVE_INFINITY},
        seq=2, at=NOW - timedelta(days=1),
    )  # fmt: skip
    p2 = reading(
        "P2",
        METER,
        Kind.GLUCOSE,
        {"glucose_mmol_l": 6.1},
        seq=9,
        at=NOW - timedelta(days=1),
        gateway_id="gw-2",
    )
    write_batch(engine, [bp, glucose, hi, p2], [], now=NOW)
    events = Runner(engine, sink=enqueue_events).step(NOW).events
    alert_p1 = next(
        e.alert_id for e in events if e.patient_id == "P1" and e.rule_id == "glucose.hypo_l2"
    )
    assert alert_p1 is not None
    return Seeded(
        team_a, team_b, member_a, admin_a, member_b, inactive_a,
        bp.reading_id, glucose.reading_id, hi.reading_id, p2.reading_id, alert_p1,
        {r.reading_id: r for r in (bp, glucose, hi, p2)},
    )  # fmt: skip
