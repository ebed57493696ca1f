"""The wearable kinds as FHIR Observations: codes from devices.observation_codes, UCUM units,
the vital-signs (or CGM IG) profile; every resource validates with fhir.resources."""

from __future__ import annotations

import pytest

from api.fhir import codes
from api.fhir.observation import observations_of
from api.fhir_models import validated
from devices.reading import Kind
from tests.api.test_fhir_mapping import STORED, _coding, _reading


@pytest.mark.parametrize(
    ("kind", "values", "loinc", "ucum", "profile"),
    [
        (Kind.SPO2, {"spo2_pct": 95.0}, "59408-5", "%", "oxygensat"),
        (Kind.BODY_TEMPERATURE, {"body_temperature_c": 38.4}, "8310-5", "Cel", "bodytemp"),
        (Kind.BODY_WEIGHT, {"body_weight_kg": 81.35}, "29463-7", "kg", "bodyweight"),
        (Kind.CGM_GLUCOSE, {"glucose_mmol_l": 6.7}, "105272-9", "mmol/L", "cgm-sensor-reading"),
        (
            Kind.HEART_RATE,
            {
                "heart_rate_per_min": 71.5,
                "heart_rate_lowest_per_min": 66.0,
                "heart_rate_highest_per_min": 80.0,
                "sample_count": 58.0,
            },
            "8867-4",
            "/min",
            "heartrate",
        ),
    ],
)
def test_a_wearable_reading_is_a_coded_observation(
    kind: Kind, values: dict[str, float], loinc: str, ucum: str, profile: str
) -> None:
    [obs] = [validated(o) for o in observations_of(_reading(kind, values), stored_at=STORED)]
    assert _coding(obs["code"], codes.LOINC) == loinc
    assert obs["valueQuantity"]["code"] == ucum
    assert any(profile in p for p in obs["meta"]["profile"])


def test_spo2_with_a_pulse_rate_derives_a_heart_rate_observation() -> None:
    reading = _reading(Kind.SPO2, {"spo2_pct": 88.0, "pulse_per_min": 104.0})
    spo2, pulse = (validated(o) for o in observations_of(reading, stored_at=STORED))
    assert _coding(spo2["code"], codes.LOINC) == "59408-5"
    assert [c["code"] for c in spo2["code"]["coding"]][:2] == ["59408-5", "2708-6"]
    assert _coding(pulse["code"], codes.LOINC) == "8867-4"
    assert pulse["derivedFrom"] == [{"reference": f"Observation/{reading.reading_id}"}]
