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


@pytest.mark.parametrize(
    ("kind", "values", "expected"),
    [
        (Kind.HEART_RATE, {"heart_rate_per_min": 71.5, "heart_rate_lowest_per_min": 66.0,
                           "heart_rate_highest_per_min": 80.0, "sample_count": 58.0},
         (71.5, 66.0, 80.0, "/min")),
        (Kind.SPO2, {"spo2_pct": 93.4, "spo2_lowest_pct": 91.0, "spo2_highest_pct": 95.0,
                     "pulse_per_min": 77.0, "sample_count": 60.0}, (93.4, 91.0, 95.0, "%")),
    ],
)  # fmt: skip
def test_a_minute_summary_carries_its_lowest_highest_and_count(
    kind: Kind, values: dict[str, float], expected: tuple[float, float, float, str]
) -> None:
    mean, lowest, highest, ucum = expected
    obs = validated(observations_of(_reading(kind, values), stored_at=STORED)[0])
    assert obs["valueQuantity"]["value"] == mean
    by_statistic = {
        c["code"]["coding"][0]["code"]: c
        for c in obs["component"]  # type: ignore[index]
    }
    assert {c["code"]["coding"][0]["system"] for c in obs["component"]} == {  # type: ignore[index]
        codes.OBSERVATION_STATISTICS
    }
    assert by_statistic["minimum"]["valueQuantity"] == {
        "value": lowest, "unit": obs["valueQuantity"]["unit"],
        "system": "http://unitsofmeasure.org", "code": ucum,
    }  # fmt: skip
    assert by_statistic["maximum"]["valueQuantity"]["value"] == highest
    assert by_statistic["count"]["valueInteger"] == round(values["sample_count"])


def test_a_single_measurement_has_no_summary_components() -> None:
    spot = _reading(Kind.SPO2, {"spo2_pct": 96.0, "pulse_per_min": 70.0})
    heart = _reading(Kind.HEART_RATE, {"heart_rate_per_min": 64.0})
    for reading in (spot, heart):
        obs = validated(observations_of(reading, stored_at=STORED)[0])
        assert "component" not in obs
