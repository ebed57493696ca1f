"""Blood Pressure Measurement 0x2A35 (Blood Pressure Service, indicate).

Spec: BLS 1.0 / SIG GATT XML `org.bluetooth.characteristic.blood_pressure_measurement.xml`
(docs/device-profiles.md section 2.5). Flags: bit 0 unit (0 mmHg, 1 kPa), bit 1 Time Stamp, bit 2
Pulse Rate, bit 3 User ID, bit 4 Measurement Status, bits 5-7 RFU (kept as sent). Fields: Flags,
Systolic, Diastolic, Mean Arterial Pressure (SFLOAT each), Time Stamp (Date Time), Pulse Rate SFLOAT
bpm, User ID u8 (0xFF unknown user), Measurement Status u16.

The `beurer-bm` profile reads pulse rate and status big-endian and a User ID byte that flag
bit 3 does not announce (docs/device-profiles.md quirk 23). Intermediate Cuff Pressure 0x2A36 shares
this layout and this module's reader (see `intermediate_cuff_pressure.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Literal, NamedTuple, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.date_time import TimeStamp, put_time_stamp, read_time_stamp
from devices.codecs.errors import EncodeError
from devices.codecs.profiles import Profile, get_profile
from devices.codecs.sfloat import SFloat

__all__ = ["BloodPressureMeasurement", "MeasurementStatus", "PulseRateRange"]

_NAME = "BloodPressureMeasurement"
FLAG_KPA = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_PULSE_RATE = 0x04
FLAG_USER_ID = 0x08
FLAG_MEASUREMENT_STATUS = 0x10
USER_ID_UNKNOWN = 0xFF


class MeasurementStatus(IntEnum):
    """Bit numbers of Measurement Status (bits 3-4 are the pulse-rate range)."""

    BODY_MOVEMENT = 0
    CUFF_TOO_LOOSE = 1
    IRREGULAR_PULSE = 2
    IMPROPER_MEASUREMENT_POSITION = 5


class PulseRateRange(IntEnum):
    """Measurement Status bits 3-4; 3 is RFU and stays an int."""

    WITHIN_RANGE = 0
    EXCEEDS_UPPER_LIMIT = 1
    BELOW_LOWER_LIMIT = 2


class BpFields(NamedTuple):
    """The decoded fields of a 0x2A35/0x2A36 payload, before naming the slots."""

    flags: int
    first: SFloat
    second: SFloat
    third: SFloat
    time_stamp: TimeStamp
    pulse_rate: SFloat | None
    user_id: int | None
    measurement_status: int | None
    profile: str | None


def read_bp(name: str, data: bytes | bytearray | memoryview, profile: str | None) -> BpFields:
    """Decode the shared BPM/ICP layout under an optional quirk profile.

    Raises:
        DecodeError: truncated, impossible time stamp, or bytes left over.
        UnknownProfileError: `profile` names no profile.
    """
    quirks = get_profile(profile)
    big = quirks is not None and quirks.bp_big_endian_pulse_and_status
    r = Reader(name, data)
    flags = r.u8("flags")
    first, second, third = r.sfloat("systolic"), r.sfloat("diastolic"), r.sfloat("mean_arterial")
    stamp = read_time_stamp(r, "time_stamp") if flags & FLAG_TIME_STAMP else None
    pulse = r.sfloat("pulse_rate", big_endian=big) if flags & FLAG_PULSE_RATE else None
    unflagged = quirks is not None and quirks.bp_unflagged_user_id
    user = r.u8("user_id") if flags & FLAG_USER_ID or unflagged else None
    status = (
        r.uint(2, "measurement_status", big_endian=big) if flags & FLAG_MEASUREMENT_STATUS else None
    )
    r.end()
    return BpFields(
        flags,
        first,
        second,
        third,
        stamp,
        pulse,
        user,
        status,
        None if quirks is None else quirks.name,
    )


def write_bp(name: str, f: BpFields) -> bytes:
    """Encode the shared BPM/ICP layout, in the quirk profile's form when one is named.

    Raises:
        EncodeError: a field disagrees with the flags or is out of range.
        UnknownProfileError: `f.profile` names no profile.
    """
    quirks: Profile | None = get_profile(f.profile)
    big = quirks is not None and quirks.bp_big_endian_pulse_and_status
    out = bytearray()
    put_uint(out, f.flags, 1, name, "flags")
    out += bytes(f.first) + bytes(f.second) + bytes(f.third)
    if f.flags & FLAG_TIME_STAMP:
        put_time_stamp(out, f.time_stamp, name, "time_stamp")
    else:
        forbid(f.time_stamp, name, "time_stamp")
    if f.flags & FLAG_PULSE_RATE:
        raw = bytes(require(f.pulse_rate, name, "pulse_rate"))
        out += raw[::-1] if big else raw
    else:
        forbid(f.pulse_rate, name, "pulse_rate")
    if f.flags & FLAG_USER_ID or (quirks is not None and quirks.bp_unflagged_user_id):
        put_uint(out, require(f.user_id, name, "user_id"), 1, name, "user_id")
    else:
        forbid(f.user_id, name, "user_id")
    if f.flags & FLAG_MEASUREMENT_STATUS:
        status = bytearray()
        put_uint(
            status,
            require(f.measurement_status, name, "measurement_status"),
            2,
            name,
            "measurement_status",
        )
        out += status[::-1] if big else status
    else:
        forbid(f.measurement_status, name, "measurement_status")
    return bytes(out)


def bp_flags(
    *,
    unit: str,
    time_stamp: datetime | None,
    pulse_rate: SFloat | None,
    user_id: int | None,
    measurement_status: int | None,
    name: str,
) -> int:
    """The flags for the fields given.

    Raises:
        EncodeError: `unit` is neither "mmHg" nor "kPa".
    """
    if unit not in ("mmHg", "kPa"):
        raise EncodeError(name, "unit", f"{unit!r} is not mmHg or kPa")
    return (
        (FLAG_KPA if unit == "kPa" else 0)
        | (FLAG_TIME_STAMP if time_stamp is not None else 0)
        | (FLAG_PULSE_RATE if pulse_rate is not None else 0)
        | (FLAG_USER_ID if user_id is not None else 0)
        | (FLAG_MEASUREMENT_STATUS if measurement_status is not None else 0)
    )


def pulse_rate_range(measurement_status: int | None) -> PulseRateRange | int | None:
    """Measurement Status bits 3-4, or None when no status was sent."""
    if measurement_status is None:
        return None
    value = (measurement_status >> 3) & 0b11
    return PulseRateRange(value) if value < 3 else value


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """One blood-pressure reading; pressures are SFLOAT in `unit`, pulse in beats per minute."""

    UUID: ClassVar[int] = 0x2A35
    flags: int
    systolic: SFloat
    diastolic: SFloat
    mean_arterial: SFloat
    time_stamp: TimeStamp = None
    pulse_rate: SFloat | None = None
    user_id: int | None = None
    measurement_status: int | None = None
    profile: str | None = None

    @property
    def unit(self) -> Literal["mmHg", "kPa"]:
        """Flag bit 0 as the spec writes it."""
        return "kPa" if self.flags & FLAG_KPA else "mmHg"

    @property
    def pulse_rate_range(self) -> PulseRateRange | int | None:
        """Measurement Status bits 3-4."""
        return pulse_rate_range(self.measurement_status)

    @classmethod
    def build(
        cls,
        *,
        systolic: SFloat,
        diastolic: SFloat,
        mean_arterial: SFloat,
        unit: Literal["mmHg", "kPa"] = "mmHg",
        time_stamp: datetime | None = None,
        pulse_rate: SFloat | None = None,
        user_id: int | None = None,
        measurement_status: int | None = None,
    ) -> Self:
        """A strict reading with the flags worked out from the fields given.

        Raises:
            EncodeError: a value is out of range or `unit` is unknown.
        """
        flags = bp_flags(
            unit=unit,
            time_stamp=time_stamp,
            pulse_rate=pulse_rate,
            user_id=user_id,
            measurement_status=measurement_status,
            name=_NAME,
        )
        made = cls(
            flags,
            systolic,
            diastolic,
            mean_arterial,
            time_stamp,
            pulse_rate,
            user_id,
            measurement_status,
        )
        bytes(made)
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode an indication, strictly or under a quirk profile.

        Raises:
            DecodeError: truncated, impossible time stamp, or bytes left over.
            UnknownProfileError: `profile` names no profile.
        """
        return cls(*read_bp(_NAME, data, profile))

    def __bytes__(self) -> bytes:
        return write_bp(
            _NAME,
            BpFields(
                self.flags,
                self.systolic,
                self.diastolic,
                self.mean_arterial,
                self.time_stamp,
                self.pulse_rate,
                self.user_id,
                self.measurement_status,
                self.profile,
            ),
        )
