"""The wearables' readings reach the rules the same way from a CSV file and from the record
store (written through ingest, read back by the runner): strap and oximeter minutes, a
thermometer, a scale and a CGM raise the same, expected alerts both ways; CSV cells of the new
kinds are checked like the others."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.csv_source import COLUMNS, OPTIONAL_COLUMNS, read_csv
from alerts.engine.errors import ReadingInputError
from alerts.engine.evaluate import PatientProfile
from alerts.engine.offline import open_alerts_at
from alerts.engine.patients import StaticPatients
from alerts.engine.runner import Runner
from devices.reading import DeviceInfo, Kind, Reading, device_id_for, reading_id_for
from ingest.store import make_engine, write_batch
from ingest.store import migrate as ingest_migrate

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NIGHT = NOW.replace(hour=2)
PROFILES = {"hf": PatientProfile(conditions=frozenset({"heart_failure"}))}
VALUE_OF = {
    Kind.HEART_RATE: "heart_rate_per_min",
    Kind.SPO2: "spo2_pct",
    Kind.BODY_TEMPERATURE: "body_temperature_c",
    Kind.BODY_WEIGHT: "body_weight_kg",
    Kind.CGM_GLUCOSE: "glucose_mmol_l",
}


def _reading(patient: str, kind: Kind, at: datetime, sequence: int, **values: float) -> Reading:
    serial = f"{patient}-{kind.value}"
    device_id = device_id_for(manufacturer="Acme", model="W1", serial=serial)
    device_time = at.strftime("%Y-%m-%dT%H:%M:%S")
    return Reading(
        reading_id=reading_id_for(
            device_id=device_id, kind=kind, sequence=sequence, device_time=device_time
        ),
        patient_id=patient, gateway_id="gw-1",
        device=DeviceInfo(device_id, "Acme", "W1", serial, "1.0"), kind=kind, measured_at=at,
        received_at=at + timedelta(seconds=30), values=values, sequence=sequence,
        device_time=device_time,
    )  # fmt: skip


def _minutes(patient: str, kind: Kind, start: datetime, n: int, **values: float) -> list[Reading]:
    return [
        _reading(patient, kind, start + timedelta(minutes=k), k, **values, sample_count=60.0)
        for k in range(n)
    ]


def _readings() -> list[Reading]:
    out = _minutes("hf", Kind.SPO2, NIGHT, 8, spo2_pct=87.0, pulse_per_min=112.0)
    out += _minutes("hf", Kind.SPO2, NIGHT + timedelta(minutes=8), 4, spo2_pct=88.0,
                    pulse_per_min=115.0)  # fmt: skip
    out += _minutes("hr", Kind.HEART_RATE, NIGHT, 15, heart_rate_per_min=38.0,
                    heart_rate_lowest_per_min=35.0, heart_rate_highest_per_min=41.0)  # fmt: skip
    out.append(_reading("hf", Kind.BODY_TEMPERATURE, NOW - timedelta(hours=2), 1,
                        body_temperature_c=38.6))  # fmt: skip
    for day, kg in enumerate((80.1, 80.4, 81.2, 82.4)):
        at = NOW - timedelta(days=3 - day, hours=1)
        out.append(_reading("hf", Kind.BODY_WEIGHT, at, day, body_weight_kg=kg))
        out.append(_reading("hr", Kind.BODY_WEIGHT, at, day, body_weight_kg=kg))
    start = NOW - timedelta(days=12)
    for k in range(12 * 288 - 1):  # 12 days of 5-minute readings, low every 10th
        at = start + timedelta(minutes=5 * k)
        glucose = 3.0 if k % 10 == 0 else 7.0
        out.append(_reading("cgm", Kind.CGM_GLUCOSE, at, k, glucose_mmol_l=glucose))
    return out


def _write_csv(path: Path, readings: list[Reading]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*COLUMNS, *OPTIONAL_COLUMNS])
        for r in readings:
            v = r.values
            cells: dict[str, Any] = dict.fromkeys((*COLUMNS, *OPTIONAL_COLUMNS), "")
            cells.update(
                patient_id=r.patient_id, kind=r.kind.value,
                measured_at=r.measured_at.isoformat().replace("+00:00", "Z"),
                reading_id=r.reading_id, received_at=r.received_at.isoformat(),
                device_id=r.device.id, pulse_per_min=v.get("pulse_per_min", ""),
            )  # fmt: skip
            cells[VALUE_OF[r.kind]] = v[VALUE_OF[r.kind]]
            w.writerow([cells[name] for name in (*COLUMNS, *OPTIONAL_COLUMNS)])


def _store_and_step(url: str, readings: list[Reading]) -> set[tuple[Any, ...]]:
    ingest_migrate(url)
    alert_store.migrate(url)
    engine = make_engine(url)
    try:
        write_batch(engine, readings, [], now=NOW - timedelta(seconds=10))
        Runner(engine, patients_for=lambda _conn: StaticPatients(PROFILES)).step(NOW)
        a = tables.alerts.c
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(a.alert_id, a.patient_id, a.rule_id, a.subject, a.evidence).where(
                    a.status == "open"
                )
            ).all()
    finally:
        engine.dispose()
    return {
        (r.alert_id, r.patient_id, r.rule_id, r.subject, tuple(r.evidence["reading_ids"]))
        for r in rows
    }


def test_wearable_alerts_are_the_same_from_a_csv_file_and_from_the_store(tmp_path: Path) -> None:
    readings = _readings()
    path = tmp_path / "wearables.csv"
    _write_csv(path, readings)
    offline = open_alerts_at(read_csv(path), int(NOW.timestamp()), profiles=PROFILES)
    got = {
        (a["alert_id"], a["patient_id"], a["rule_id"], a["subject"],
         tuple(a["evidence"]["reading_ids"]))  # type: ignore[index]
        for a in offline
    }  # fmt: skip
    stored = _store_and_step(f"sqlite:///{tmp_path}/store.db", readings)
    assert got == stored
    assert {(a[1], a[2]) for a in got} == {
        ("hf", "spo2.low_sustained"),
        ("hf", "heart_rate.tachycardia_rest"),
        ("hf", "temperature.fever"),
        ("hf", "weight.gain_hf_3d"),  # the same weights raise nothing without heart failure
        ("hr", "heart_rate.bradycardia_rest"),
        ("cgm", "cgm.tbr_14d"),
    }


@pytest.mark.parametrize(
    ("kind", "cells", "column", "message"),
    [
        ("heart_rate", {}, "heart_rate_per_min", "required for heart_rate"),
        ("spo2", {"spo2_pct": "101"}, "spo2_pct", "outside 0..100"),
        ("glucose", {"glucose_mmol_l": "5", "body_weight_kg": "80"}, "body_weight_kg",
         "not on glucose rows"),
        ("body_weight", {"body_weight_kg": "80", "pulse_per_min": "70"}, "pulse_per_min",
         "only on blood_pressure and spo2 rows"),
        ("cgm_glucose", {}, "glucose_mmol_l", "required for glucose"),
        ("body_temperature", {"body_temperature_c": "warm"}, "body_temperature_c",
         "is not a number"),
    ],
)  # fmt: skip
def test_bad_wearable_cells_are_named(
    tmp_path: Path, kind: str, cells: dict[str, str], column: str, message: str
) -> None:
    names = [*COLUMNS, *OPTIONAL_COLUMNS]
    row = dict.fromkeys(names, "") | {"patient_id": "p", "kind": kind,
                                      "measured_at": "2026-03-01T07:00:00Z"} | cells  # fmt: skip
    path = tmp_path / "bad.csv"
    path.write_text(",".join(names) + "\n" + ",".join(row[n] for n in names) + "\n")
    with pytest.raises(ReadingInputError) as err:
        read_csv(path)
    assert (err.value.line, err.value.column) == (2, column)
    assert message in str(err.value)
