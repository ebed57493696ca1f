"""The pairing page names every kind of device the hub reads and shows a wearable's reading the
way a patient reads it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.reading import DeviceInfo, Kind, Reading, reading_id_for
from gateway.connections import SERVICE_KINDS
from gateway.i18n import KIND_NAMES, LOCALES, Locale, tr
from gateway.page import describe

AT = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)


def _reading(kind: Kind, values: dict[str, float]) -> Reading:
    device = DeviceInfo("d-1", "homevitals", "sim", "S1")
    return Reading(
        reading_id=reading_id_for(device_id="d-1", kind=kind, sequence=1, device_time=None),
        patient_id="p-1",
        gateway_id="gw-1",
        device=device,
        kind=kind,
        measured_at=AT,
        received_at=AT,
        values=values,
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_every_kind_the_hub_reads_has_a_name_on_the_page(locale: Locale) -> None:
    assert set(SERVICE_KINDS.values()) <= set(KIND_NAMES)
    names = {tr(locale, KIND_NAMES[kind]) for kind in SERVICE_KINDS.values()}
    assert all(names) and len(names) == len(set(SERVICE_KINDS.values()))
    if locale == "zh-CN":  # translated, not the English message ids
        assert names.isdisjoint(KIND_NAMES.values())


@pytest.mark.parametrize(
    ("kind", "values", "unit", "shown"),
    [
        (Kind.HEART_RATE, {"heart_rate_per_min": 71.4, "sample_count": 60.0}, "mmol/L", "71 /min"),
        (Kind.SPO2, {"spo2_pct": 94.2, "pulse_per_min": 80.0}, "mmol/L", "94 % SpO2, 80 /min"),
        (Kind.BODY_TEMPERATURE, {"body_temperature_c": 38.44}, "mmol/L", "38.4 °C"),
        (Kind.BODY_WEIGHT, {"body_weight_kg": 81.35}, "mmol/L", "81.3 kg"),
        (Kind.CGM_GLUCOSE, {"glucose_mmol_l": 6.7}, "mg/dL", "121 mg/dL"),
    ],
)
def test_a_wearable_reading_as_the_patient_reads_it(
    kind: Kind, values: dict[str, float], unit: str, shown: str
) -> None:
    assert describe(_reading(kind, values), unit) == shown  # type: ignore[arg-type]
