"""Builders and encoders: physical values in, the right bytes out, bad values refused."""

from __future__ import annotations

from datetime import datetime

import pytest

from devices.codecs import (
    BloodPressureMeasurement,
    CurrentTime,
    DayOfWeek,
    EncodeError,
    Float,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSampleLocation,
    GlucoseType,
    IntermediateCuffPressure,
    RecordAccessControlPoint,
    SFloat,
    Special,
)


def test_sfloat_from_value_uses_the_exponent_given() -> None:
    assert SFloat.from_value(5.5, exponent=-1) == SFloat(-1, 55)
    assert SFloat.from_value(5.5e-3, exponent=-4) == SFloat(-4, 55)
    assert bytes(SFloat.from_value(120, exponent=0)) == b"\x78\x00"
    assert SFloat.from_value(Special.NEGATIVE_INFINITY).raw == 0x0802


@pytest.mark.parametrize(
    ("value", "exponent", "field"),
    [(2048, 0, "mantissa"), (2047, 0, "value"), (float("nan"), 0, "value"), (1, 8, "exponent")],
)
def test_sfloat_refuses_what_it_cannot_encode(value: float, exponent: int, field: str) -> None:
    with pytest.raises(EncodeError) as caught:
        SFloat.from_value(value, exponent=exponent)
    assert caught.value.field == field


def test_float_specials_and_value() -> None:
    assert Float.from_raw(0x007FFFFF).value is Special.NAN
    assert Float.from_raw(0x00800000).value is Special.NRES
    assert Float.from_raw(0xFF00016F).value == pytest.approx(36.7)
    assert bytes(Float.from_value(36.7, exponent=-1)) == bytes.fromhex("6F0100FF")


def test_glucose_build_sets_flags_and_converts_units() -> None:
    record = GlucoseMeasurement.build(
        sequence_number=5,
        base_time=datetime(2024, 5, 6, 7, 8, 9),
        concentration=SFloat.from_value(120e-5, exponent=-5),
        concentration_unit="kg/L",
        type=GlucoseType.CAPILLARY_PLASMA,
        sample_location=GlucoseSampleLocation.FINGER,
        context_follows=True,
    )
    assert record.flags == 0x12
    assert record.concentration_mg_dl == pytest.approx(120.0)
    assert record.concentration_mmol_l == pytest.approx(120 / 18.016)
    assert record.context_follows and record.concentration_unit == "kg/L"
    assert GlucoseMeasurement.from_bytes(bytes(record)) == record


def test_glucose_build_needs_type_and_location_with_a_concentration() -> None:
    with pytest.raises(EncodeError) as caught:
        GlucoseMeasurement.build(
            sequence_number=1, base_time=None, concentration=SFloat.from_value(5, exponent=0)
        )
    assert caught.value.field == "concentration"


def test_fields_that_disagree_with_flags_are_refused() -> None:
    with pytest.raises(EncodeError) as caught:
        bytes(GlucoseMeasurement(0x01, 1, None))
    assert caught.value.field == "time_offset_min"
    with pytest.raises(EncodeError) as caught:
        bytes(GlucoseMeasurement(0x00, 1, None, time_offset_min=5))
    assert caught.value.field == "time_offset_min"
    with pytest.raises(EncodeError) as caught:
        bytes(GlucoseMeasurement(0x00, 0x10000, None))
    assert caught.value.field == "sequence_number"


def test_context_build_pairs() -> None:
    context = GlucoseMeasurementContext.build(sequence_number=1, tester=1, health=5)
    assert bytes(context) == bytes.fromhex("04010051")
    with pytest.raises(EncodeError):
        GlucoseMeasurementContext.build(sequence_number=1, tester=1)


def test_bp_build_and_icp_build() -> None:
    reading = BloodPressureMeasurement.build(
        systolic=SFloat(0, 120),
        diastolic=SFloat(0, 80),
        mean_arterial=SFloat(0, 93),
        pulse_rate=SFloat(0, 64),
        measurement_status=0b01000,
    )
    assert reading.flags == 0x14
    assert reading.pulse_rate_range == 1
    icp = IntermediateCuffPressure.build(cuff_pressure=SFloat(0, 150), unit="kPa")
    assert bytes(icp) == bytes.fromhex("019600FF07FF07")
    with pytest.raises(EncodeError):
        BloodPressureMeasurement.build(
            systolic=SFloat(0, 1), diastolic=SFloat(0, 1), mean_arterial=SFloat(0, 1), user_id=256
        )


def test_current_time_build_fills_day_of_week_and_fraction() -> None:
    value = CurrentTime.build(datetime(2024, 2, 29, 13, 45, 30, 500_000), adjust_reason=1)
    assert value.day_of_week == DayOfWeek.THURSDAY and value.fractions256 == 128
    assert bytes(value) == bytes.fromhex("E807021D0D2D1E048001")


def test_racp_filter_needs_matching_kinds() -> None:
    with pytest.raises(EncodeError):
        RecordAccessControlPoint.report(at_least=1, at_most=datetime(2024, 1, 1))
    with pytest.raises(EncodeError):
        RecordAccessControlPoint.report()
    with pytest.raises(EncodeError):
        RecordAccessControlPoint.number_of_records_response(70000)
