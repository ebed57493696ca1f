"""A record for the dashboard tests: a patient with two weeks of cuff and meter readings
(Asia/Shanghai), the alerts the engine raises from them, two teams, one of which the patient has
not granted blood pressure, and two enrolled hubs: one online, one that dropped off (its last
will) two hours ago."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alerts.delivery.outbox import enqueue_events
from alerts.engine.runner import Runner
from careteam import enrolment_store, registry
from devices.reading import DeviceInfo, Kind, Reading
from ingest.hub_facts import HubUpdates, write_hub_updates
from ingest.store import write_batch
from tests.api.record import reading
from tests.support.record import TEST_ACTOR, ensure_patient, follow

NOW = datetime.now(UTC).replace(second=0, microsecond=0)
CUFF = DeviceInfo(
    "5e7d0c1a-0000-5c3a-8e11-7d9f6a2b5c51", "Omron", "M7 Intelli IT", "OM7-20413", "2.0"
)
METER = DeviceInfo(
    "5e7d0c1a-0000-5c3a-8e11-7d9f6a2b5c52", "Ascensia", "Contour Next One", "CN1-88127", "1.1"
)
PATIENT = "p-wang"
DAYS = 14
BP_PER_DAY = 2  # morning and evening
GLUCOSE_HOURS = (7, 11, 17, 22)  # local: fasting, before lunch, before dinner, bedtime
TZ_OFFSET = timedelta(hours=8)  # Asia/Shanghai has no daylight saving
HUB_ONLINE = "gw-dash-living-room"
HUB_OFFLINE = "gw-dash-bedroom"
HUB_OFFLINE_SINCE = NOW - timedelta(hours=2)


@dataclass(frozen=True)
class DashboardRecord:
    clinic_member: str  # hospital clinic: every kind
    practice_member: str  # family practice: no blood pressure
    bp_count: int
    glucose_count: int
    hypo_alert: str


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    midnight_local = (NOW + TZ_OFFSET).replace(hour=0, minute=0) - timedelta(days=day)
    return midnight_local + timedelta(hours=hour, minutes=minute) - TZ_OFFSET


def seed(engine: sa.Engine) -> DashboardRecord:
    start = NOW - timedelta(days=30)
    with engine.begin() as conn:
        clinic = registry.add_institution(conn, "First Hospital", "hospital_clinic", start)
        practice = registry.add_institution(conn, "Dr Zhou's practice", "family_practice", start)
        clinic_team = registry.add_team(conn, clinic, "Endocrinology clinic", start)
        practice_team = registry.add_team(conn, practice, "Family practice", start)
        clinic_member = registry.add_member(
            conn, clinic_team, "Nurse Li", role="nurse", tier=0, at=start
        )
        practice_member = registry.add_member(
            conn, practice_team, "Dr Zhou", role="physician", tier=0, at=start
        )
        ensure_patient(conn, PATIENT, start, timezone="Asia/Shanghai")
        follow(conn, clinic_team, PATIENT, start)
        follow(conn, practice_team, PATIENT, start, kinds=("glucose", "alerts", "devices"))
        for hub in (HUB_ONLINE, HUB_OFFLINE):
            enrolment_store.enrol_gateway(conn, hub, [PATIENT], actor=TEST_ACTOR, at=start)
        write_hub_updates(conn, HubUpdates(statuses={HUB_OFFLINE: False}), HUB_OFFLINE_SINCE)
        write_hub_updates(conn, HubUpdates(statuses={HUB_ONLINE: True}), NOW)
    readings: list[Reading] = []
    seq = 0
    for day in range(DAYS - 1, -1, -1):
        for slot, hour in enumerate((7, 20)[:BP_PER_DAY]):
            at = _local(day, hour, 5)
            if at >= NOW:
                continue
            seq += 1
            systolic = 138 + 6 * math.sin(day + slot) + (DAYS - day) * 0.6
            readings.append(
                reading(
                    PATIENT, CUFF, Kind.BLOOD_PRESSURE,
                    {"systolic_mmhg": float(round(systolic)),
                     "diastolic_mmhg": float(round(systolic * 0.62)),
                     "pulse_per_min": 72.0},
                    seq=seq, at=at,
                )
            )  # fmt: skip
    bp_count = len(readings)
    hypo_at = NOW - timedelta(hours=3)
    for day in range(DAYS - 1, -1, -1):
        for hour in GLUCOSE_HOURS:
            at = _local(day, hour, 10)
            # The hypo below is the newest glucose reading: a slot's reading after it would
            # resolve its episode, and whether one falls there depends on the time of day.
            if at >= hypo_at:
                continue
            seq += 1
            mmol = 7.2 + 2.5 * math.sin(hour / 3 + day) + (1.5 if hour == 11 else 0.0)
            readings.append(
                reading(PATIENT, METER, Kind.GLUCOSE, {"glucose_mmol_l": round(mmol, 1)},
                        seq=seq, at=at)
            )  # fmt: skip
    seq += 1  # a level 2 hypo three hours ago (the rule looks back 24 h)
    readings.append(
        reading(PATIENT, METER, Kind.GLUCOSE, {"glucose_mmol_l": 2.7}, seq=seq, at=hypo_at)
    )  # fmt: skip
    glucose_count = len(readings) - bp_count
    write_batch(engine, readings, [], now=NOW)
    events = Runner(engine, sink=enqueue_events).step(NOW).events
    hypo = next(e.alert_id for e in events if e.rule_id == "glucose.hypo_l2")
    return DashboardRecord(clinic_member, practice_member, bp_count, glucose_count, hypo)
