"""The canonical reading: ids, JSON round trip, schema agreement, typed errors on bad input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import (
    DeviceInfo,
    Kind,
    OriginalValue,
    Reading,
    ReadingValidationError,
    Special,
    device_id_for,
    reading_from_json,
    reading_id_for,
    reading_to_json,
)
from devices.reading import PRIMARY_VALUE, VALUE_RANGES
from devices.units import kpa_to_mmhg, mg_dl_to_mmol_l, mmhg_to_kpa, mmol_l_to_mg_dl

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "devices" / "schema" / "reading.v1.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
DEVICE_ID = device_id_for(manufacturer="Acme", model="GL-1", serial="SN0001")


def glucose(sequence: int = 7, **overrides: Any) -> Reading:
    fields: dict[str, Any] = {
        "reading_id": reading_id_for(
            device_id=DEVICE_ID,
            kind=Kind.GLUCOSE,
            sequence=sequence,
            device_time="2026-03-01T07:58:00",
        ),
        "patient_id": "patient-1",
        "gateway_id": "gw-1",
        "device": DeviceInfo(DEVICE_ID, "Acme", "GL-1", "SN0001", "1.2.3"),
        "kind": Kind.GLUCOSE,
        "measured_at": datetime(2026, 3, 1, 7, 58, tzinfo=UTC),
        "received_at": datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        "values": {"glucose_mmol_l": 5.5},
        "sequence": sequence,
        "device_time": "2026-03-01T07:58:00",
        "device_time_offset_min": 0,
        "clock_offset_s": -12.5,
        "original": (OriginalValue("glucose", 99.0, "mg/dL"),),
        "context": {"meal": "preprandial", "sample_type": "capillary_whole_blood"},
        "status": (),
    }
    fields.update(overrides)
    return Reading(**fields)


# --- ids ----------------------------------------------------------------------------------


def test_reading_id_is_stable_and_independent_of_gateway() -> None:
    a = glucose(gateway_id="gw-1")
    b = glucose(gateway_id="gw-2", received_at=datetime(2026, 3, 2, tzinfo=UTC))
    assert a.reading_id == b.reading_id
    assert a.reading_id == "%s" % reading_id_for(  # noqa: UP031
        device_id=DEVICE_ID, kind="glucose", sequence=7, device_time="2026-03-01T07:58:00"
    )


@pytest.mark.parametrize(
    ("kind", "sequence", "device_time"),
    [
        (Kind.KETONE, 7, "2026-03-01T07:58:00"),
        (Kind.GLUCOSE, 8, "2026-03-01T07:58:00"),
        (Kind.GLUCOSE, 7, "2026-03-01T07:58:01"),
        (Kind.GLUCOSE, None, "2026-03-01T07:58:00"),
    ],
)
def test_reading_id_changes_with_each_input(
    kind: Kind, sequence: int | None, device_time: str
) -> None:
    base = reading_id_for(
        device_id=DEVICE_ID, kind=Kind.GLUCOSE, sequence=7, device_time="2026-03-01T07:58:00"
    )
    assert (
        reading_id_for(device_id=DEVICE_ID, kind=kind, sequence=sequence, device_time=device_time)
        != base
    )


def test_device_id_prefers_serial_and_never_uses_address() -> None:
    by_serial = device_id_for(manufacturer="Acme", model="GL-1", serial="SN0001")
    assert by_serial == device_id_for(
        manufacturer="Acme", model="GL-1", serial="SN0001", system_id=b"\x01" * 8
    )
    by_system = device_id_for(manufacturer="Acme", model="GL-1", system_id=b"\x01" * 8)
    assert by_system != by_serial
    with pytest.raises(ValueError, match="serial number or a system id"):
        device_id_for(manufacturer="Acme", model="GL-1")


# --- units ----------------------------------------------------------------------------------


def test_unit_factors() -> None:
    assert mg_dl_to_mmol_l(180.16) == pytest.approx(10.0)
    assert mmol_l_to_mg_dl(3.9) == pytest.approx(70.26, abs=0.01)
    assert kpa_to_mmhg(16.0) == pytest.approx(120.01, abs=0.01)
    assert mmhg_to_kpa(kpa_to_mmhg(17.6)) == pytest.approx(17.6)


# --- JSON and schema ------------------------------------------------------------------------


def test_json_round_trip_and_schema_valid() -> None:
    reading = glucose()
    doc = reading_to_json(reading)
    VALIDATOR.validate(doc)
    assert reading_from_json(json.loads(json.dumps(doc))) == reading


def test_special_values_survive_as_specials() -> None:
    reading = glucose(values={"glucose_mmol_l": Special.POSITIVE_INFINITY}, status=("result_high",))
    doc = reading_to_json(reading)
    assert doc["values"] == {"glucose_mmol_l": "+INF"}
    VALIDATOR.validate(doc)
    back = reading_from_json(doc)
    assert back.values["glucose_mmol_l"] is Special.POSITIVE_INFINITY


def test_schema_and_dataclass_agree_on_fields() -> None:
    doc_fields = set(SCHEMA["properties"]) - {"schema"}
    assert doc_fields == set(Reading.__dataclass_fields__)
    assert set(SCHEMA["properties"]["device"]["properties"]) == set(DeviceInfo.__dataclass_fields__)
    assert set(SCHEMA["properties"]["kind"]["enum"]) == {k.value for k in Kind}
    schema_values = set(SCHEMA["properties"]["values"]["properties"])
    assert schema_values == {name for ranges in VALUE_RANGES.values() for name in ranges}
    assert set(SCHEMA["properties"]["original"]["items"]["properties"]) == set(
        OriginalValue.__dataclass_fields__
    )
    for rule in SCHEMA["allOf"]:
        kind = Kind(rule["if"]["properties"]["kind"]["const"])
        values = rule["then"]["properties"]["values"]
        assert tuple(values["required"]) == PRIMARY_VALUE[kind]
        assert set(values["propertyNames"]["enum"]) == set(VALUE_RANGES[kind])


def test_control_solution_is_kept_and_marked() -> None:
    reading = glucose(status=("control_solution",))
    assert reading_from_json(reading_to_json(reading)).is_control_solution


# --- named malformed cases -----------------------------------------------------------------


def _doc(**changes: Any) -> dict[str, Any]:
    doc = reading_to_json(glucose())
    for key, value in changes.items():
        if value is KeyError:
            del doc[key]
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ([], "$"),
        (_doc(patient_id=KeyError), "patient_id"),
        (_doc(patient_id="a b"), "patient_id"),
        (_doc(extra=1), "extra"),
        (_doc(schema="hv.reading/2"), "schema"),
        (_doc(kind="cholesterol"), "kind"),
        (_doc(reading_id="00000000-0000-0000-0000-000000000000"), "reading_id"),
        (_doc(measured_at="2026-03-01T07:58:00"), "measured_at"),
        (_doc(measured_at="1999-12-31T23:00:00Z"), "measured_at"),
        (_doc(received_at="yesterday"), "received_at"),
        (_doc(values={"glucose_mmol_l": 250.0}), "values.glucose_mmol_l"),
        (_doc(values={"glucose_mmol_l": "high"}), "values.glucose_mmol_l"),
        (_doc(values={"glucose_mmol_l": True}), "values.glucose_mmol_l"),
        (_doc(values={"systolic_mmhg": 120.0}), "values.systolic_mmhg"),
        (_doc(values={}), "values.glucose_mmol_l"),
        (_doc(device={"id": "x", "mac": "AA:BB"}), "device.mac"),
        (_doc(device_time="2026-03-01 07:58"), "device_time"),
        (_doc(device_time_offset_min=40000), "device_time_offset_min"),
        (_doc(context={"Meal": "x"}), "context.Meal"),
        (_doc(status=["control_solution", "control_solution"]), "status"),
        (_doc(original=[{"name": "glucose", "value": 1}]), "original[0]"),
    ],
)
def test_malformed_documents_name_the_field(doc: object, field: str) -> None:
    with pytest.raises(ReadingValidationError) as info:
        reading_from_json(doc)
    assert info.value.field == field
    # The published schema rejects them too (except rules it cannot express).
    if field not in {"reading_id", "measured_at", "values.glucose_mmol_l"}:
        assert not VALIDATOR.is_valid(doc)


def test_future_readings_rejected_only_relative_to_now() -> None:
    doc = _doc(measured_at="2026-03-05T00:00:00Z")
    reading_from_json(doc)  # no clock given: accepted
    with pytest.raises(ReadingValidationError) as info:
        reading_from_json(doc, now=datetime(2026, 3, 1, tzinfo=UTC))
    assert info.value.field == "measured_at"


# --- properties ------------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,20}", fullmatch=True)
_texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FFF), min_size=1, max_size=20)


@st.composite
def readings(draw: st.DrawFn) -> Reading:
    kind = draw(st.sampled_from(list(Kind)))
    ranges = VALUE_RANGES[kind]
    names = list(PRIMARY_VALUE[kind]) + [
        n for n in ranges if n not in PRIMARY_VALUE[kind] and draw(st.booleans())
    ]
    values: dict[str, float | Special] = {}
    for name in names:
        lo, hi = ranges[name]
        values[name] = draw(
            st.one_of(st.floats(lo, hi, allow_nan=False), st.sampled_from(list(Special)))
        )
    dev = draw(_ids)
    seq = draw(st.one_of(st.none(), st.integers(0, 0xFFFF)))
    dt = draw(st.one_of(st.none(), st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1))))
    device_time = dt.replace(microsecond=0).isoformat() if dt else None
    moment = st.datetimes(datetime(2000, 1, 2), datetime(2100, 1, 1), timezones=st.just(UTC))
    return Reading(
        reading_id=reading_id_for(device_id=dev, kind=kind, sequence=seq, device_time=device_time),
        patient_id=draw(_ids),
        gateway_id=draw(_ids),
        device=DeviceInfo(dev, draw(st.one_of(st.none(), _texts)), None, None, None),
        kind=kind,
        measured_at=draw(moment),
        received_at=draw(moment),
        values=values,
        sequence=seq,
        device_time=device_time,
        device_time_offset_min=draw(st.one_of(st.none(), st.integers(-32768, 32767))),
        clock_offset_s=draw(st.one_of(st.none(), st.floats(-1e6, 1e6))),
        original=tuple(
            OriginalValue(n, v, "unit")
            for n, v in draw(st.dictionaries(_names, st.floats(-1e9, 1e9), max_size=3)).items()
        ),
        context=draw(
            st.dictionaries(
                _names, st.one_of(_texts, st.integers(-5, 5), st.booleans()), max_size=4
            )
        ),
        status=tuple(draw(st.sets(_names, max_size=4))),
    )


@settings(max_examples=300, print_blob=True)
@given(readings())
def test_random_valid_readings_survive_json(reading: Reading) -> None:
    doc = json.loads(json.dumps(reading_to_json(reading)))
    VALIDATOR.validate(doc)
    assert reading_from_json(doc) == reading


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, print_blob=True)
@given(_json)
def test_garbage_raises_only_the_typed_error(doc: object) -> None:
    with pytest.raises(ReadingValidationError):
        reading_from_json(doc)


@settings(max_examples=400, print_blob=True)
@given(st.data())
def test_mutated_documents_raise_only_the_typed_error(data: st.DataObject) -> None:
    doc = reading_to_json(glucose())
    mutated = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(sorted(doc)))
    mutated[path] = data.draw(_json)
    try:
        reading_from_json(mutated, now=datetime(2026, 3, 1, 8, tzinfo=UTC) + timedelta(hours=1))
    except ReadingValidationError as exc:
        assert exc.field.split(".")[0].split("[")[0] in {*doc, "$"}
