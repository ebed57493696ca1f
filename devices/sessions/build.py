"""Building canonical `Reading`s from decoded records, with honest time and nothing invented.

`reading_id` comes from `reading_id_for` over the device id, kind, sequence number and the raw
Base Time / Time Stamp as sent. `measured_at` is the clock-corrected UTC time
(`devices.sessions.clock`); when the device gave no usable time, or the correction lands
outside 2000..received+1 day (a device clock that jumped), `measured_at` is the receive time
and a status flag says so, while the raw device time stays in the reading.

A record that cannot become a valid reading (no concentration, a value outside the physical
range) raises `ReadingValidationError`; the session quarantines its raw bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import IntEnum

from devices.codecs.blood_pressure_measurement import (
    BloodPressureMeasurement,
    MeasurementStatus,
    PulseRateRange,
    pulse_rate_range,
)
from devices.codecs.date_time import device_time_text
from devices.codecs.glucose_measurement import (
    GlucoseMeasurement,
    GlucoseSampleLocation,
    GlucoseType,
    SensorStatus,
)
from devices.codecs.glucose_measurement_context import GlucoseMeasurementContext
from devices.codecs.sfloat import SFloat
from devices.errors import ReadingValidationError
from devices.reading import (
    CONTROL_SOLUTION,
    ContextValue,
    DeviceInfo,
    Kind,
    OriginalValue,
    Reading,
    reading_from_json,
    reading_id_for,
    reading_to_json,
)
from devices.sessions import clock as clk
from devices.special import Special
from devices.units import kpa_to_mmhg

CONTEXT_MISSING = "context_missing"
CLOCK_NOT_READ = "clock_not_read"
DEVICE_TIME_UNKNOWN = "device_time_unknown"
DEVICE_TIME_IMPLAUSIBLE = "device_time_implausible"
CLOCK_OFFSET_OUT_OF_RANGE = "clock_offset_out_of_range"
# The canonical reading bounds clock_offset_s to 20 years (devices.reading).
_MAX_OFFSET_S = 20 * 365 * 86400


def reported_offset(clock: clk.ClockEstimate) -> tuple[float | None, list[str]]:
    """The clock offset a reading carries, and a flag when it is too large to carry."""
    if not clock.measured:
        return None, []
    if abs(clock.offset_s) > _MAX_OFFSET_S:
        return None, [CLOCK_OFFSET_OUT_OF_RANGE]
    return clock.offset_s, []


def _code(value: IntEnum | int | None) -> ContextValue | None:
    if value is None:
        return None
    return value.name.lower() if isinstance(value, IntEnum) else int(value)


def _sfloat(value: SFloat | None) -> float | str | None:
    if value is None:
        return None
    number = value.value
    return number.value if isinstance(number, Special) else number


def times(
    device_time: datetime | None, clock: clk.ClockEstimate, received_at: datetime
) -> tuple[datetime, list[str]]:
    """measured_at for a record stamped `device_time` (device frame), and the flags it earns."""
    flags = [] if clock.measured else [CLOCK_NOT_READ]
    if device_time is None:
        return received_at, [*flags, DEVICE_TIME_UNKNOWN]
    try:
        measured = clk.corrected_utc(device_time, clock)
    except OverflowError:
        return received_at, [*flags, DEVICE_TIME_IMPLAUSIBLE]
    if not clk.plausible(measured, received_at):
        return received_at, [*flags, DEVICE_TIME_IMPLAUSIBLE]
    return measured, flags


def checked(reading: Reading, received_at: datetime) -> Reading:
    """The reading, after the exact validation ingest will apply to it.

    Raises:
        ReadingValidationError: naming the field ingest would reject.
    """
    return reading_from_json(reading_to_json(reading), now=received_at)


def _glucose_context(ctx: GlucoseMeasurementContext | None) -> dict[str, ContextValue]:
    if ctx is None:
        return {}
    pairs: Mapping[str, ContextValue | None] = {
        "meal": _code(ctx.meal),
        "tester": _code(ctx.tester),
        "health": _code(ctx.health),
        "carbohydrate_id": _code(ctx.carbohydrate_id),
        "carbohydrate_kg": _sfloat(ctx.carbohydrate),
        "exercise_duration_s": ctx.exercise_duration_s,
        "exercise_intensity_pct": ctx.exercise_intensity_pct,
        "medication_id": _code(ctx.medication_id),
        f"medication_{ctx.medication_unit.lower()}": _sfloat(ctx.medication),
        "hba1c_pct": _sfloat(ctx.hba1c_pct),
    }
    return {k: v for k, v in pairs.items() if v is not None}


def _sensor_flags(status: int | None) -> list[str]:
    if not status:
        return []
    flags = []
    for bit in range(16):
        if status & (1 << bit):
            try:
                flags.append(SensorStatus(bit).name.lower())
            except ValueError:
                flags.append(f"sensor_status_bit_{bit}")
    return flags


def glucose_reading(
    m: GlucoseMeasurement,
    ctx: GlucoseMeasurementContext | None,
    *,
    device: DeviceInfo,
    patient_id: str,
    gateway_id: str,
    clock: clk.ClockEstimate,
    received_at: datetime,
    context_missing: bool = False,
) -> Reading:
    """The canonical reading of one Glucose Measurement (and its Context, if any).

    Raises:
        ReadingValidationError: the record has no concentration, or a value ingest would reject.
    """
    value = m.concentration_mmol_l
    if value is None or m.concentration is None:
        raise ReadingValidationError("values.glucose_mmol_l", "the record carries no concentration")
    kind = Kind.KETONE if ctx is not None and ctx.is_ketone else Kind.GLUCOSE
    # The device clock read this session is the clock that stamps Base Time, so with a
    # measured clock Base Time alone is corrected (Contour-like meters keep UTC in Base Time and
    # put the local offset in Time Offset; others keep local time with offset 0: both come out
    # right). Without a readable clock, the user-facing time (Base Time + Time Offset) is taken
    # to be the hub's local time.
    # A partly unknown Base Time (a meter whose calendar was never set: zero year, month or
    # day) is legal; the record is kept with its raw time, timed at receipt and flagged
    # device_time_unknown by `times`.
    base = m.base_time if isinstance(m.base_time, datetime) else None
    stamp = base if clock.measured else m.user_facing_time
    measured_at, flags = times(stamp, clock, received_at)
    offset_s, offset_flags = reported_offset(clock)
    status = _sensor_flags(m.sensor_status) + flags + offset_flags
    if m.type == GlucoseType.CONTROL_SOLUTION or (
        m.sample_location == GlucoseSampleLocation.CONTROL_SOLUTION
    ):
        status.append(CONTROL_SOLUTION)
    if context_missing:
        status.append(CONTEXT_MISSING)
    context = _glucose_context(ctx)
    for name, code in (
        ("sample_type", _code(m.type)),
        ("sample_location", _code(m.sample_location)),
    ):
        if code is not None:
            context[name] = code
    if kind is Kind.KETONE and isinstance(value, float):
        value = value / 10  # i-SENS ketone: the 0x2A18 value is ketone x 10 (quirk 14)
    device_time = device_time_text(m.base_time)
    reading = Reading(
        reading_id=reading_id_for(
            device_id=device.id, kind=kind, sequence=m.sequence_number, device_time=device_time
        ),
        patient_id=patient_id,
        gateway_id=gateway_id,
        device=device,
        kind=kind,
        measured_at=measured_at,
        received_at=received_at,
        values={"ketone_mmol_l" if kind is Kind.KETONE else "glucose_mmol_l": value},
        sequence=m.sequence_number,
        device_time=device_time,
        device_time_offset_min=m.time_offset_min,
        clock_offset_s=offset_s,
        original=(
            OriginalValue("glucose_concentration", m.concentration.value, m.concentration_unit),
        ),
        context=context,
        status=tuple(dict.fromkeys(status)),
    )
    return checked(reading, received_at)


DEVICE_TIME_ABSENT = "device_time_absent"


def _pressure_mmhg(value: SFloat, unit: str) -> float | Special:
    number = value.value
    if isinstance(number, Special) or unit == "mmHg":
        return number
    return kpa_to_mmhg(number)


def _bp_status(status: int | None) -> list[str]:
    if not status:
        return []
    flags = []
    for bit in range(16):
        if bit in (3, 4) or not status & (1 << bit):
            continue
        try:
            flags.append(MeasurementStatus(bit).name.lower())
        except ValueError:
            flags.append(f"measurement_status_bit_{bit}")
    pulse_range = pulse_rate_range(status)
    if pulse_range not in (None, PulseRateRange.WITHIN_RANGE):
        name = pulse_range.name.lower() if isinstance(pulse_range, IntEnum) else str(pulse_range)
        flags.append(f"pulse_rate_{name}")
    return flags


def episodic_times(
    time_stamp: object, clock: clk.ClockEstimate, received_at: datetime, local_utc_offset_min: int
) -> tuple[str, datetime, list[str]]:
    """(device_time, measured_at, flags) of a reading from a device without sequence numbers
    (cuff, thermometer, scale): its Time Stamp, or the hub's local receive time to the second
    flagged `device_time_absent` when it sent none (else every such reading of the device would
    share one `reading_id`). A partly unknown stamp (a codec `DateTime`) counts as none."""
    stamp = time_stamp if isinstance(time_stamp, datetime) else None
    if stamp is None:
        local = clk.local_time(received_at, local_utc_offset_min).replace(microsecond=0)
        return local.isoformat(), received_at, [DEVICE_TIME_ABSENT]
    measured_at, flags = times(stamp, clock, received_at)
    return stamp.isoformat(), measured_at, flags


def blood_pressure_reading(
    m: BloodPressureMeasurement,
    *,
    device: DeviceInfo,
    patient_id: str,
    gateway_id: str,
    clock: clk.ClockEstimate,
    received_at: datetime,
    local_utc_offset_min: int,
) -> Reading:
    """The canonical reading of one Blood Pressure Measurement indication.

    A cuff that sends no Time Stamp gets the gateway's local receive time (to the second) as its
    `device_time`, flagged `device_time_absent`: without it every such reading of the device
    would share one `reading_id` and all but the first would be dropped as duplicates.

    Raises:
        ReadingValidationError: a value ingest would reject (outside the physical range).
    """
    status = _bp_status(m.measurement_status)
    device_time, measured_at, flags = episodic_times(
        m.time_stamp, clock, received_at, local_utc_offset_min
    )
    offset_s, offset_flags = reported_offset(clock)
    flags += offset_flags
    values: dict[str, float | Special] = {
        "systolic_mmhg": _pressure_mmhg(m.systolic, m.unit),
        "diastolic_mmhg": _pressure_mmhg(m.diastolic, m.unit),
        "mean_arterial_mmhg": _pressure_mmhg(m.mean_arterial, m.unit),
    }
    original = [
        OriginalValue("systolic", m.systolic.value, m.unit),
        OriginalValue("diastolic", m.diastolic.value, m.unit),
        OriginalValue("mean_arterial", m.mean_arterial.value, m.unit),
    ]
    if m.pulse_rate is not None:
        values["pulse_per_min"] = m.pulse_rate.value
        original.append(OriginalValue("pulse_rate", m.pulse_rate.value, "1/min"))
    context: dict[str, ContextValue] = {}
    if m.user_id is not None:
        context["user_id"] = m.user_id
    reading = Reading(
        reading_id=reading_id_for(
            device_id=device.id, kind=Kind.BLOOD_PRESSURE, sequence=None, device_time=device_time
        ),
        patient_id=patient_id,
        gateway_id=gateway_id,
        device=device,
        kind=Kind.BLOOD_PRESSURE,
        measured_at=measured_at,
        received_at=received_at,
        values=values,
        sequence=None,
        device_time=device_time,
        device_time_offset_min=None,
        clock_offset_s=offset_s,
        original=tuple(original),
        context=context,
        status=tuple(dict.fromkeys(status + flags)),
    )
    return checked(reading, received_at)
