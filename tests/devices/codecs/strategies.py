"""Hypothesis strategies: random *valid* values of every characteristic, built field by field
from random flags, so that every flag combination is reachable."""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime

from hypothesis import strategies as st

from devices.codecs import (
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    CgmFeature,
    CgmMeasurement,
    CgmMeasurementNotification,
    CgmSessionStartTime,
    CurrentTime,
    DateTime,
    FirmwareRevisionString,
    Float,
    GlucoseFeature,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    HardwareRevisionString,
    HeartRateMeasurement,
    IntermediateCuffPressure,
    ManufacturerNameString,
    ModelNumberString,
    PlxContinuousMeasurement,
    PlxSpotCheckMeasurement,
    RecordAccessControlPoint,
    SerialNumberString,
    SFloat,
    SoftwareRevisionString,
    SystemId,
    TemperatureMeasurement,
    WeightMeasurement,
)
from devices.codecs.registry import Characteristic

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
nibble = st.integers(0, 15)
sfloats = st.builds(SFloat, st.integers(-8, 7), st.integers(-2048, 2047))
floats32 = st.builds(Float, st.integers(-128, 127), st.integers(-(2**23), 2**23 - 1))
moments = st.datetimes(
    min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda d: d.replace(microsecond=0))
record_times = st.none() | moments


def _time_stamps() -> st.SearchStrategy[object]:
    partial = date_times.filter(lambda d: d.value is None and any(bytes(d)))
    return st.one_of(record_times, partial)


def _opt(flags: int, bit: int, strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return strategy if flags & bit else st.none()


@st.composite
def glucose_measurements(draw: st.DrawFn) -> GlucoseMeasurement:
    flags = draw(u8)
    profile = draw(st.sampled_from([None, "isens"]))
    month_13 = profile == "isens" and draw(st.booleans())
    base = draw(moments.map(lambda d: d.replace(month=1)) if month_13 else _time_stamps())
    conc = flags & 0x02
    return GlucoseMeasurement(
        flags,
        draw(u16),
        base,
        draw(_opt(flags, 0x01, st.integers(-0x8000, 0x7FFF))),  # type: ignore[arg-type]
        draw(sfloats) if conc else None,
        draw(nibble) if conc else None,
        draw(nibble) if conc else None,
        draw(_opt(flags, 0x08, u16)),  # type: ignore[arg-type]
        profile,
        month_13,
    )


@st.composite
def glucose_contexts(draw: st.DrawFn) -> GlucoseMeasurementContext:
    f = draw(u8)
    return GlucoseMeasurementContext(
        f,
        draw(u16),
        draw(u8) if f & 0x80 else None,
        draw(u8) if f & 0x01 else None,
        draw(sfloats) if f & 0x01 else None,
        draw(u8) if f & 0x02 else None,
        draw(nibble) if f & 0x04 else None,
        draw(nibble) if f & 0x04 else None,
        draw(u16) if f & 0x08 else None,
        draw(u8) if f & 0x08 else None,
        draw(u8) if f & 0x10 else None,
        draw(sfloats) if f & 0x10 else None,
        draw(sfloats) if f & 0x40 else None,
        draw(st.sampled_from([None, "isens"])),
    )


@st.composite
def racps(draw: st.DrawFn) -> RecordAccessControlPoint:
    rac = RecordAccessControlPoint
    kind = draw(st.sampled_from(["request", "filtered", "count", "response", "vendor"]))
    if kind == "request":
        op = draw(st.sampled_from([1, 2, 4]))
        return rac.request(op, draw(st.sampled_from([0, 1, 5, 6, 7, 0xFF])))
    if kind == "filtered":
        op = draw(st.sampled_from([1, 2, 4]))
        use_time = draw(st.booleans())
        one = moments if use_time else u16
        low, high = draw(
            st.one_of(st.tuples(one, st.none()), st.tuples(st.none(), one), st.tuples(one, one))
        )
        return rac.filtered(op, at_least=low, at_most=high)  # type: ignore[arg-type]
    if kind == "count":
        return rac.number_of_records_response(draw(u16))
    if kind == "response":
        return rac.response(draw(u8), draw(u8))
    data = bytes([draw(st.integers(7, 0xFF)), draw(u8)]) + draw(st.binary(max_size=18))
    return rac.from_bytes(data)


@st.composite
def blood_pressures(draw: st.DrawFn) -> BloodPressureMeasurement:
    f = draw(u8)
    profile = draw(st.sampled_from([None, "beurer-bm"]))
    user = draw(u8) if f & 0x08 or profile == "beurer-bm" else None
    return BloodPressureMeasurement(
        f,
        draw(sfloats),
        draw(sfloats),
        draw(sfloats),
        draw(_time_stamps()) if f & 0x02 else None,
        draw(sfloats) if f & 0x04 else None,
        user,
        draw(u16) if f & 0x10 else None,
        profile,
    )


@st.composite
def cuff_pressures(draw: st.DrawFn) -> IntermediateCuffPressure:
    bp = draw(blood_pressures())
    return IntermediateCuffPressure(*(getattr(bp, f.name) for f in fields(bp)))


@st.composite
def _date_times(draw: st.DrawFn) -> DateTime:
    moment = draw(moments)
    parts = [moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second]
    for index in draw(st.sets(st.integers(0, 2))):
        parts[index] = 0  # any of year, month, day may be unknown
    return DateTime(*parts)


date_times = _date_times()


@st.composite
def heart_rates(draw: st.DrawFn) -> HeartRateMeasurement:
    f = draw(u8)
    return HeartRateMeasurement(
        f,
        draw(u16 if f & 0x01 else u8),
        draw(u16) if f & 0x08 else None,
        tuple(draw(st.lists(u16, min_size=1, max_size=9))) if f & 0x10 else None,
    )


@st.composite
def temperatures(draw: st.DrawFn) -> TemperatureMeasurement:
    f = draw(u8)
    return TemperatureMeasurement(
        f,
        draw(floats32),
        draw(_time_stamps()) if f & 0x02 else None,
        draw(u8) if f & 0x04 else None,
    )


@st.composite
def weights(draw: st.DrawFn) -> WeightMeasurement:
    f = draw(u8)
    return WeightMeasurement(
        f,
        draw(u16),
        draw(_time_stamps()) if f & 0x02 else None,
        draw(u8) if f & 0x04 else None,
        draw(u16) if f & 0x08 else None,
        draw(u16) if f & 0x08 else None,
    )


@st.composite
def plx_spot_checks(draw: st.DrawFn) -> PlxSpotCheckMeasurement:
    f = draw(u8)
    return PlxSpotCheckMeasurement(
        f,
        draw(sfloats),
        draw(sfloats),
        draw(_time_stamps()) if f & 0x01 else None,
        draw(u16) if f & 0x02 else None,
        draw(st.integers(0, 0xFFFFFF)) if f & 0x04 else None,
        draw(sfloats) if f & 0x08 else None,
    )


@st.composite
def plx_continuous(draw: st.DrawFn) -> PlxContinuousMeasurement:
    f = draw(u8)
    return PlxContinuousMeasurement(
        f,
        draw(sfloats),
        draw(sfloats),
        draw(sfloats) if f & 0x01 else None,
        draw(sfloats) if f & 0x01 else None,
        draw(sfloats) if f & 0x02 else None,
        draw(sfloats) if f & 0x02 else None,
        draw(u16) if f & 0x04 else None,
        draw(st.integers(0, 0xFFFFFF)) if f & 0x08 else None,
        draw(sfloats) if f & 0x10 else None,
    )


@st.composite
def cgms(draw: st.DrawFn) -> CgmMeasurement:
    f = draw(u8)
    return CgmMeasurement(
        f,
        draw(sfloats),
        draw(u16),
        draw(u8) if f & 0x80 else None,
        draw(u8) if f & 0x40 else None,
        draw(u8) if f & 0x20 else None,
        draw(sfloats) if f & 0x01 else None,
        draw(sfloats) if f & 0x02 else None,
        draw(st.booleans()),
    )


def _dis(cls: type) -> st.SearchStrategy[Characteristic]:
    return st.builds(cls, st.text(max_size=20))


@st.composite
def cgm_session_start_times(draw: st.DrawFn) -> CgmSessionStartTime:
    zone = draw(st.one_of(st.just(-128), st.integers(-48, 56)))
    return CgmSessionStartTime(draw(record_times), zone, draw(u8), draw(st.booleans()))


VALID: dict[int, st.SearchStrategy[Characteristic]] = {
    0x2A18: glucose_measurements(),
    0x2A34: glucose_contexts(),
    0x2A51: st.builds(GlucoseFeature, u16),
    0x2A52: racps(),
    0x2A35: blood_pressures(),
    0x2A36: cuff_pressures(),
    0x2A49: st.builds(BloodPressureFeature, u16),
    0x2A2B: st.builds(CurrentTime, record_times, u8, u8, u8),
    0x2A08: date_times,
    0x2A29: _dis(ManufacturerNameString),
    0x2A24: _dis(ModelNumberString),
    0x2A25: _dis(SerialNumberString),
    0x2A27: _dis(HardwareRevisionString),
    0x2A26: _dis(FirmwareRevisionString),
    0x2A28: _dis(SoftwareRevisionString),
    0x2A23: st.builds(SystemId, st.integers(0, 2**40 - 1), st.integers(0, 2**24 - 1)),
    0x2A19: st.builds(BatteryLevel, st.integers(0, 100)),
    0x2A37: heart_rates(),
    0x2A5E: plx_spot_checks(),
    0x2A5F: plx_continuous(),
    0x2A1C: temperatures(),
    0x2A9D: weights(),
    0x2AA7: st.builds(
        CgmMeasurementNotification, st.lists(cgms(), min_size=1, max_size=3).map(tuple)
    ),
    0x2AA8: st.builds(CgmFeature.build, st.integers(0, 2**24 - 1), u8),
    0x2AAA: cgm_session_start_times(),
}
