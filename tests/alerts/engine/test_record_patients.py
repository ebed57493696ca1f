"""The runner reads time zones and conditions from the patient record (PostgreSQL), with the
care plan's values as explicit overrides."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.evaluate import PatientProfile
from alerts.engine.patients import Layered, StaticPatients
from alerts.engine.record_patients import RecordPatients
from alerts.engine.runner import Runner
from careteam import migrations as record_migrations
from careteam import record
from devices.reading import Reading
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW
from tests.alerts.engine.support import reading, store
from tests.support.record import TEST_ACTOR


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    ingest_migrate(pg_url)
    alert_store.migrate(pg_url)
    record_migrations.migrate(pg_url)
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _week(patient: str, utc_hours: tuple[int, int], bp: tuple[float, float]) -> list[Reading]:
    """Two readings at each of two UTC hours on the 6 days before NOW's day."""
    day0 = NOW.replace(hour=0, minute=0)
    out, seq = [], 0
    for d in range(1, 7):
        for hour in utc_hours:
            for k in range(2):
                at = day0 - timedelta(days=d) + timedelta(hours=hour, minutes=k)
                seq += 1
                out.append(reading(patient, at, seq, bp=bp))
    return out


def _open(engine: sa.Engine) -> set[tuple[str, str]]:
    a = tables.alerts.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.patient_id, a.rule_id).where(a.status == "open"))
        return {(r.patient_id, r.rule_id) for r in rows}


def test_time_zone_and_conditions_come_from_the_record(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for pid, zone, conditions in (
            ("p-sh", "Asia/Shanghai", ()), ("p-dm", "Europe/Berlin", ("diabetes_type_2",)),
            ("p-utc", "UTC", ()), ("p-plain", "Europe/Berlin", ("copd",)),
        ):  # fmt: skip
            record.add_patient(
                conn, patient_id=pid, display_name=pid, timezone=zone, actor=TEST_ACTOR,
                at=NOW - timedelta(days=30), conditions=conditions,
            )  # fmt: skip
    # 23:00 and 11:00 UTC are 07:00 and 19:00 in Shanghai: inside the Chinese guideline's
    # slots there, outside them in UTC.
    readings = _week("p-sh", (23, 11), (150, 95)) + _week("p-utc", (23, 11), (150, 95))
    # 132/78 at 07:00 and 19:00 Berlin time: uncontrolled only with diabetes (130/80).
    readings += _week("p-dm", (6, 18), (132, 78)) + _week("p-plain", (6, 18), (132, 78))
    store(engine, readings, NOW - timedelta(minutes=5))
    Runner(engine, patients_for=lambda conn: Layered(RecordPatients(conn), StaticPatients())).step(
        NOW
    )
    opened = _open(engine)
    assert ("p-sh", "bp.home_china_2019") in opened
    assert ("p-utc", "bp.home_china_2019") not in opened
    assert ("p-dm", "bp.home_esh_7d") in opened
    assert ("p-plain", "bp.home_esh_7d") not in opened


def test_the_care_plan_overrides_the_record(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        record.add_patient(
            conn, patient_id="p-sh", display_name="p-sh", timezone="UTC", actor=TEST_ACTOR,
            at=NOW - timedelta(days=30),
        )  # fmt: skip
    store(engine, _week("p-sh", (23, 11), (150, 95)), NOW - timedelta(minutes=5))
    plan = StaticPatients({"p-sh": PatientProfile(timezone=ZoneInfo("Asia/Shanghai"))})
    Runner(engine, patients_for=lambda conn: Layered(RecordPatients(conn), plan)).step(NOW)
    assert ("p-sh", "bp.home_china_2019") in _open(engine)
