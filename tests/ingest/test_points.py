"""Pure point building (line protocol) and row mapping."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

from devices import Special
from ingest.points import StoredReading, epoch_ms, line_for, lines_for
from ingest.rows import (
    QuarantineItem,
    device_rows,
    patient_rows,
    quarantine_digest,
    quarantine_row,
    reading_row,
)
from tests.ingest.support import make_reading

T0 = datetime(2026, 3, 1, 7, 58, 0, 123_456, tzinfo=UTC)


def test_glucose_point_has_kind_tags_values_and_ms_time() -> None:
    reading = StoredReading(1, "glucose", "patient-1", "dev-1", T0, {"glucose_mmol_l": 5.5})
    assert line_for(reading) == (
        "glucose,device_id=dev-1,patient_id=patient-1 glucose_mmol_l=5.5 1772351880123"
    )


def test_fields_are_sorted_and_specials_left_out() -> None:
    values = {"systolic_mmhg": 120.0, "diastolic_mmhg": 80, "pulse_per_min": "NaN"}
    reading = StoredReading(2, "blood_pressure", "p", "d", T0, values)
    assert line_for(reading) == (
        "blood_pressure,device_id=d,patient_id=p diastolic_mmhg=80.0,systolic_mmhg=120.0 "
        "1772351880123"
    )


def test_reading_with_only_special_values_has_no_point() -> None:
    hi = StoredReading(3, "glucose", "p", "d", T0, {"glucose_mmol_l": "+INF"})
    ok = StoredReading(4, "glucose", "p", "d", T0, {"glucose_mmol_l": 1.0})
    assert line_for(hi) is None
    lines, skipped = lines_for([hi, ok])
    assert (len(lines), skipped) == (1, 1)


def test_tag_and_measurement_characters_are_escaped() -> None:
    reading = StoredReading(5, "a kind,x", "p=1 2", "d,1", T0, {"v w": 1.0})
    assert line_for(reading) == (
        r"a\ kind\,x,device_id=d\,1,patient_id=p\=1\ 2 v\ w=1.0 1772351880123"
    )


def test_epoch_ms_is_utc_for_naive_and_aware_times() -> None:
    naive = datetime(1970, 1, 1, 0, 0, 1)
    assert epoch_ms(naive) == 1000
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert epoch_ms(plus_two) == epoch_ms(T0) == 1772351880123


def test_reading_row_fills_typed_columns_and_keeps_specials_in_json() -> None:
    reading = make_reading("gw-1", "patient-1", "SN1", 1)
    row = reading_row(reading, stored_at=T0)
    assert (row["systolic_mmhg"], row["diastolic_mmhg"], row["pulse_per_min"]) == (
        111.0,
        70.0,
        66.0,
    )
    assert row["glucose_mmol_l"] is None and row["control_solution"] is False
    hi = dataclasses.replace(
        make_reading("gw-1", "patient-1", "SN1", 2),
        values={"glucose_mmol_l": Special.POSITIVE_INFINITY},
        status=("control_solution",),
    )
    row = reading_row(hi, stored_at=T0)
    assert row["glucose_mmol_l"] is None
    assert row["values"] == {"glucose_mmol_l": "+INF"}
    assert row["control_solution"] is True and row["meal"] == "preprandial"
    assert row["stored_at"] == T0


def test_patients_and_devices_are_distinct_and_sorted() -> None:
    readings = [make_reading("gw", p, s, 1) for p, s in [("b", "S2"), ("a", "S1"), ("b", "S2")]]
    assert [r["patient_id"] for r in patient_rows(readings, stored_at=T0)] == ["a", "b"]
    devices = device_rows(readings, stored_at=T0)
    assert len(devices) == 2 and devices[0]["device_id"] < devices[1]["device_id"]


def test_quarantine_digest_depends_on_topic_payload_and_position() -> None:
    a = quarantine_digest("t", b"x", None)
    assert a == quarantine_digest("t", b"x", None)
    assert len({a, quarantine_digest("u", b"x", None), quarantine_digest("t", b"x", 0)}) == 3
    item = QuarantineItem("t", b"x" * 10, "f" * 300, "r", gateway_id="gw", index=0)
    row = quarantine_row(item, received_at=T0)
    assert row["digest"] == quarantine_digest("t", b"x" * 10, 0)
    assert len(str(row["field"])) == 200 and row["payload"] == b"x" * 10
