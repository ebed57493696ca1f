"""The FHIR mappings: every resource validates with fhir.resources (R4B), codes and units."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.fhir import codes
from api.fhir.bundle import capability_statement, operation_outcome, searchset
from api.fhir.ids import gateway_device_id
from api.fhir.observation import VIEWS, observations_of, split_observation_id
from api.fhir.resources import (
    AlertRecord,
    DeviceRecord,
    MemberRecord,
    care_team,
    device,
    flag,
    gateway_device,
    patient,
    practitioner,
)
from api.fhir_models import InvalidResourceError, validated
from devices.reading import DeviceInfo, Kind, Reading, reading_id_for
from devices.special import Special

AT = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
STORED = datetime(2026, 3, 1, 7, 31, 2, 5000, tzinfo=UTC)
DEVICE = DeviceInfo("3b1f6a2e-8c1d-5e7f-9a10-2b3c4d5e6f70", "Omron", "M7", "SN1", "1.2")


def _reading(kind: Kind, values: dict[str, float | Special], **extra: object) -> Reading:
    seq = int(str(extra.pop("sequence", 7)))
    device_time = "2026-03-01T15:30:00"
    return Reading(
        reading_id=reading_id_for(
            device_id=DEVICE.id, kind=kind, sequence=seq, device_time=device_time
        ),
        patient_id="pat_1:a",
        gateway_id="gw-0042",
        device=DEVICE,
        kind=kind,
        measured_at=AT,
        received_at=AT,
        values=values,
        sequence=seq,
        device_time=device_time,
        device_time_offset_min=480,
        clock_offset_s=-3.5,
        context={"meal": "fasting"} if kind is Kind.GLUCOSE else {},
        status=tuple(str(s) for s in extra.get("status", ())),  # type: ignore[attr-defined]
    )


def _coding(concept: object, system: str) -> str:
    assert isinstance(concept, dict)
    return next(c["code"] for c in concept["coding"] if c["system"] == system)


def test_blood_pressure_is_a_panel_and_a_heart_rate() -> None:
    reading = _reading(
        Kind.BLOOD_PRESSURE,
        {"systolic_mmhg": 142.0, "diastolic_mmhg": 91.0, "pulse_per_min": 72.0},
        status=("irregular_pulse",),
    )
    panel, rate = (validated(o) for o in observations_of(reading, stored_at=STORED))
    assert _coding(panel["code"], codes.LOINC) == "85354-9"
    assert _coding(panel["category"][0], codes.OBSERVATION_CATEGORY) == "vital-signs"
    assert "valueQuantity" not in panel
    components = {_coding(c["code"], codes.LOINC): c["valueQuantity"] for c in panel["component"]}
    assert components == {
        "8480-6": {"value": 142.0, "unit": "mmHg", "system": codes.UCUM, "code": "mm[Hg]"},
        "8462-4": {"value": 91.0, "unit": "mmHg", "system": codes.UCUM, "code": "mm[Hg]"},
    }
    assert rate["id"] == f"{reading.reading_id}-hr"
    assert _coding(rate["code"], codes.LOINC) == "8867-4"
    assert rate["valueQuantity"]["code"] == "/min"
    assert rate["derivedFrom"] == [{"reference": f"Observation/{reading.reading_id}"}]
    for obs in (panel, rate):
        assert obs["subject"] == {"reference": "Patient/pat.5f1.3aa"}
        assert obs["device"] == {"reference": f"Device/{DEVICE.id}"}
        gateway = next(e for e in obs["extension"] if e["url"] == codes.GATEWAY_EXTENSION)
        assert gateway["valueReference"]["reference"] == f"Device/{gateway_device_id('gw-0042')}"
        clock = next(e for e in obs["extension"] if e["url"] == codes.DEVICE_CLOCK_EXTENSION)
        assert {
            e["url"]: next(v for k, v in e.items() if k != "url") for e in clock["extension"]
        } == {
            "deviceTime": "2026-03-01T15:30:00",
            "timeOffsetMinutes": 480,
            "clockOffsetSeconds": -3.5,
        }
        assert obs["meta"]["tag"] == [
            {"system": codes.STATUS_FLAG_SYSTEM, "code": "irregular_pulse"}
        ]
    assert split_observation_id(rate["id"]) == (reading.reading_id, "hr")


def test_blood_pressure_without_pulse_has_no_heart_rate() -> None:
    reading = _reading(Kind.BLOOD_PRESSURE, {"systolic_mmhg": 120.0, "diastolic_mmhg": 80.0})
    assert [o["id"] for o in observations_of(reading, stored_at=STORED)] == [reading.reading_id]


def test_glucose_in_mmol_per_litre_with_loinc() -> None:
    obs = validated(
        observations_of(_reading(Kind.GLUCOSE, {"glucose_mmol_l": 5.4}), stored_at=STORED)[0]
    )
    assert _coding(obs["code"], codes.LOINC) == "14743-9"
    assert _coding(obs["category"][0], codes.OBSERVATION_CATEGORY) == "laboratory"
    assert obs["valueQuantity"] == {
        "value": 5.4,
        "unit": "mmol/L",
        "system": "http://unitsofmeasure.org",
        "code": "mmol/L",
    }
    context = next(e for e in obs["extension"] if e["url"] == codes.CONTEXT_EXTENSION)
    assert context["extension"] == [{"url": "meal", "valueString": "fasting"}]


@pytest.mark.parametrize(
    ("special", "reason", "interpretation"),
    [
        (Special.POSITIVE_INFINITY, "positive-infinity", ">"),
        (Special.NEGATIVE_INFINITY, "negative-infinity", "<"),
        (Special.NAN, "not-a-number", None),
        (Special.NRES, "error", None),
        (Special.RESERVED, "error", None),
    ],
)
def test_special_values_are_never_numbers(
    special: Special, reason: str, interpretation: str | None
) -> None:
    obs = validated(
        observations_of(_reading(Kind.GLUCOSE, {"glucose_mmol_l": special}), stored_at=STORED)[0]
    )
    assert "valueQuantity" not in obs
    assert _coding(obs["dataAbsentReason"], codes.DATA_ABSENT_REASON) == reason
    if interpretation is None:
        assert "interpretation" not in obs
    else:
        assert _coding(obs["interpretation"][0], codes.INTERPRETATION) == interpretation


def test_special_value_in_a_component() -> None:
    reading = _reading(Kind.BLOOD_PRESSURE, {"systolic_mmhg": Special.NAN, "diastolic_mmhg": 80.0})
    panel = validated(observations_of(reading, stored_at=STORED)[0])
    systolic = next(c for c in panel["component"] if _coding(c["code"], codes.LOINC) == "8480-6")
    assert "valueQuantity" not in systolic
    assert _coding(systolic["dataAbsentReason"], codes.DATA_ABSENT_REASON) == "not-a-number"


def test_every_view_names_a_loinc_code_first() -> None:
    for view in VIEWS:
        assert view.primary_coding.system == codes.LOINC


def test_devices_flags_and_care_team_validate() -> None:
    validated(
        device(DeviceRecord(DEVICE.id, "Omron", "M7", "SN1", "1.2", "pat_1:a", ("blood_pressure",)))
    )
    validated(device(DeviceRecord(DEVICE.id, None, None, None, None, None, ())))
    validated(gateway_device("gw_0042:x", "P1"))
    alert = AlertRecord(
        "9d6f6f52-7d3c-5b4e-8a1f-0c2d3e4f5a6b",
        "P1",
        "glucose.hypo_l2",
        1,
        "high",
        "open",
        AT,
        AT,
        None,
    )
    active = validated(flag(alert))
    assert active["status"] == "active"
    assert active["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "PH"
    closed = validated(
        flag(AlertRecord(**{**_fields(alert), "closed_at": STORED, "closed_by": "m"}))
    )
    assert closed["status"] == "inactive"
    assert closed["period"]["end"] == "2026-03-01T07:31:02.005000Z"
    validated(patient("pat_1:a", name="Li Wei"))
    members = [
        MemberRecord("m-1", "t-1", "Dr Chen", "physician", True),
        MemberRecord("m-2", "t-1", "Coordinator Wu", "coordinator", True),
        MemberRecord("m-3", "t-1", "Former", "nurse", False),
    ]
    for m in members:
        validated(practitioner(m))
    team = validated(care_team("t-1", "Diabetes clinic", "i-1", "City Hospital", members))
    assert [p["member"]["reference"] for p in team["participant"]] == [
        "Practitioner/m-1",
        "Practitioner/m-2",
    ]


def _fields(alert: AlertRecord) -> dict[str, object]:
    return {name: getattr(alert, name) for name in AlertRecord.__slots__}


def test_bundle_outcome_and_capability_statement_validate() -> None:
    obs = observations_of(_reading(Kind.GLUCOSE, {"glucose_mmol_l": 5.4}), stored_at=STORED)
    bundle = validated(
        searchset(
            "http://api/fhir",
            "Observation",
            obs,
            self_url="http://api/fhir/Observation?patient=P1",
            next_url="http://api/fhir/Observation?patient=P1&_cursor=abc",
        )
    )
    assert [link["relation"] for link in bundle["link"]] == ["self", "next"]
    assert bundle["entry"][0]["fullUrl"] == f"http://api/fhir/Observation/{obs[0]['id']}"
    validated(operation_outcome("forbidden", "no consent"))
    statement = validated(capability_statement("http://api/fhir", published=AT))
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert types == {
        "Patient",
        "Practitioner",
        "CareTeam",
        "Device",
        "Observation",
        "Flag",
        "Consent",
        "AuditEvent",
    }


def test_an_invalid_resource_is_refused_without_its_data() -> None:
    with pytest.raises(InvalidResourceError) as caught:
        validated({"resourceType": "Patient", "id": "secret_name"})
    assert "secret" not in caught.value.reason
