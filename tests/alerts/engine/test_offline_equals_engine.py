"""Property: `alerts evaluate` on a CSV file and the engine evaluating the same readings from
the record store (written through ingest, read back by the runner) raise the same alerts.

Random readings for three patients cover what issue 17 changed: identical resends under new
ids, the same reading id sent twice, implausible values, symptoms, meter LO/HI, late
(back-filled) arrivals, a patient with a time zone and a comorbidity from the care plan. The
store is SQLite (a real, supported record store) so each example gets a fresh database.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.csv_source import COLUMNS, read_csv
from alerts.engine.evaluate import PatientProfile
from alerts.engine.offline import open_alerts_at
from alerts.engine.patients import StaticPatients
from alerts.engine.runner import Runner
from devices.reading import DeviceInfo, Kind, Reading, device_id_for, reading_id_for
from ingest.store import make_engine, write_batch
from ingest.store import migrate as ingest_migrate

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PROFILES = {"b": PatientProfile(ZoneInfo("Asia/Shanghai"), frozenset({"diabetes"}))}
PLAN = {"c": {"glucose.hypo_l1": {"below_mmol_l": 4.4}}}

glucose_value = st.one_of(
    st.sampled_from([0.0, 2.5, 3.5, 4.2, 6.0, 15.0, 40.0, "LO", "HI"]),
    st.integers(30, 200).map(lambda i: i / 10),
)
bp_value = st.one_of(
    st.sampled_from([(80, 120), (0, 0), (190, 110), (200, 125), (85, 55), (150, 95)]),
    st.tuples(st.integers(100, 170), st.integers(60, 100)),
)
reading = st.fixed_dictionaries({
    "patient": st.sampled_from(["a", "b", "c"]),
    "age_min": st.integers(0, 16 * 24 * 60),
    "delay_min": st.one_of(st.just(1), st.integers(1, 5 * 24 * 60)),
    "glucose": st.one_of(st.none(), glucose_value),
    "bp": bp_value,
    "symptoms": st.booleans(),
    "resend": st.sampled_from(["no", "no", "no", "same_id", "new_id"]),
})  # fmt: skip


def _reading(d: dict[str, Any], sequence: int, arrival: datetime) -> Reading:
    measured = NOW - timedelta(minutes=d["age_min"])
    kind = Kind.GLUCOSE if d["glucose"] is not None else Kind.BLOOD_PRESSURE
    serial = f"{d['patient']}-{kind.value}"
    device_id = device_id_for(manufacturer="Acme", model="M1", serial=serial)
    values: dict[str, Any] = (
        {"glucose_mmol_l": {"LO": "-INF", "HI": "+INF"}.get(d["glucose"], d["glucose"])}
        if kind is Kind.GLUCOSE
        else {"systolic_mmhg": float(d["bp"][0]), "diastolic_mmhg": float(d["bp"][1])}
    )
    status = ("symptoms",) if d["symptoms"] and kind is Kind.BLOOD_PRESSURE else ()
    device_time = measured.strftime("%Y-%m-%dT%H:%M:%S")
    rid = reading_id_for(device_id=device_id, kind=kind, sequence=sequence, device_time=device_time)
    return Reading(
        reading_id=rid, patient_id=d["patient"], gateway_id="gw-1",
        device=DeviceInfo(device_id, "Acme", "M1", serial, "1.0"), kind=kind,
        measured_at=measured, received_at=arrival, values=values, sequence=sequence,
        device_time=device_time, status=status,
    )  # fmt: skip


def _readings(draws: list[dict[str, Any]]) -> list[tuple[Reading, datetime]]:
    """(reading, arrival) pairs; a resend (same id, or the same reading under a new id)
    arrives 30 s after the original."""
    out: list[tuple[Reading, datetime]] = []
    for i, d in enumerate(draws):
        measured = NOW - timedelta(minutes=d["age_min"])
        arrival = min(measured + timedelta(minutes=d["delay_min"]), NOW - timedelta(seconds=1))
        out.append((_reading(d, i, arrival), arrival))
        if d["resend"] != "no":
            again = arrival + timedelta(seconds=30)
            sequence = i if d["resend"] == "same_id" else 10_000 + i
            out.append((_reading(d, sequence, again), again))
    return out


def _write_csv(path: Path, pairs: list[tuple[Reading, datetime]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*COLUMNS, "reading_id", "received_at", "device_id"])
        for r, arrival in pairs:
            v = r.values
            g = v.get("glucose_mmol_l")
            w.writerow([
                r.patient_id, r.kind.value, r.measured_at.isoformat().replace("+00:00", "Z"),
                "" if g is None else g, v.get("systolic_mmhg", ""), v.get("diastolic_mmhg", ""),
                "", "", ";".join(r.status), r.reading_id, arrival.isoformat(), r.device.id,
            ])  # fmt: skip


def _store_and_step(url: str, pairs: list[tuple[Reading, datetime]]) -> set[tuple[Any, ...]]:
    ingest_migrate(url)
    alert_store.migrate(url)
    engine = make_engine(url)
    try:
        for r, arrival in sorted(pairs, key=lambda p: p[1]):
            write_batch(engine, [r], [], now=arrival)  # a resent reading id is stored once
        runner = Runner(engine, overrides=PLAN, patients_for=lambda _conn: StaticPatients(PROFILES))
        runner.step(NOW)
        a = tables.alerts.c
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    a.alert_id, a.patient_id, a.rule_id, a.subject, a.priority, a.evidence
                ).where(a.status == "open")
            ).all()
    finally:
        engine.dispose()
    return {
        (r.alert_id, r.patient_id, r.rule_id, r.subject, r.priority,
         tuple(r.evidence["reading_ids"]))
        for r in rows
    }  # fmt: skip


_SAME_INSTANT: dict[str, Any] = {"patient": "a", "age_min": 60, "delay_min": 1, "bp": (0, 0),
                                 "symptoms": False, "resend": "no"}  # fmt: skip


@settings(
    max_examples=25, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
@given(st.lists(reading, min_size=1, max_size=40))
# Two implausible glucose readings of one instant (different sequence numbers) that reach the
# record in the opposite order to the file's lines: identical values (one reading, the first
# to arrive counts) and different values (the last to arrive is the newest, the anchor).
@example([_SAME_INSTANT | {"glucose": 0.0, "delay_min": 5}, _SAME_INSTANT | {"glucose": 0.0}])
@example([_SAME_INSTANT | {"glucose": 0.0, "delay_min": 5}, _SAME_INSTANT | {"glucose": 40.0}])
def test_offline_evaluation_equals_the_engine_on_the_store(draws: list[dict[str, Any]]) -> None:
    pairs = _readings(draws)
    with TemporaryDirectory() as tmp:
        path = Path(tmp) / "readings.csv"
        _write_csv(path, pairs)
        offline = open_alerts_at(
            read_csv(path), int(NOW.timestamp()), overrides=PLAN, profiles=PROFILES
        )
        engine = _store_and_step(f"sqlite:///{tmp}/store.db", pairs)
    got = {
        (a["alert_id"], a["patient_id"], a["rule_id"], a["subject"], a["priority"],
         tuple(a["evidence"]["reading_ids"]))  # type: ignore[index]
        for a in offline
    }  # fmt: skip
    assert got == engine, json.dumps(sorted(map(str, got ^ engine)), indent=1)


def test_a_fixed_example_raises_the_same_nonempty_set_both_ways(tmp_path: Path) -> None:
    day = 24 * 60
    draws = [
        # A late hypo (measured 3 days ago, arrived 3 days later), an implausible 0.0, a crisis
        # with symptoms resent under a new id, a diastolic above systolic, a 2-minute-old 80/120.
        {"patient": "a", "age_min": 3 * day, "delay_min": 3 * day - 5, "glucose": 2.5,
         "bp": (0, 0), "symptoms": False, "resend": "same_id"},
        {"patient": "a", "age_min": 60, "delay_min": 1, "glucose": 0.0, "bp": (0, 0),
         "symptoms": False, "resend": "no"},
        {"patient": "b", "age_min": 30, "delay_min": 1, "glucose": None, "bp": (200, 125),
         "symptoms": True, "resend": "new_id"},
        {"patient": "c", "age_min": 90, "delay_min": 1, "glucose": None, "bp": (80, 120),
         "symptoms": False, "resend": "no"},
    ]  # fmt: skip
    pairs = _readings(draws)
    path = tmp_path / "readings.csv"
    _write_csv(path, pairs)
    offline = open_alerts_at(read_csv(path), int(NOW.timestamp()), overrides=PLAN,
                             profiles=PROFILES)  # fmt: skip
    engine = _store_and_step(f"sqlite:///{tmp_path}/store.db", pairs)
    got = {
        (a["alert_id"], a["patient_id"], a["rule_id"], a["subject"], a["priority"],
         tuple(a["evidence"]["reading_ids"]))  # type: ignore[index]
        for a in offline
    }  # fmt: skip
    assert got == engine
    assert {(pid, rule, subject, prio) for _, pid, rule, subject, prio, _ in got} == {
        ("a", "glucose.hypo_l2", "late", "medium"),
        ("a", "quality.implausible", "glucose", "low"),
        ("b", "bp.crisis", "", "high"),
        ("c", "quality.implausible", "blood_pressure", "low"),
    }
    crisis = next(ids for _, pid, rule, _, _, ids in got if rule == "bp.crisis")
    assert len(crisis) == 1  # the resend under a new id is the same reading
