"""Glucose Measurement 0x2A18 (Glucose Service, notify).

Spec: GLS v1.0.1 section 3.106 / SIG GATT XML `org.bluetooth.characteristic.glucose_measurement.xml`
(docs/device-profiles.md section 2.1). Flags: bit 0 Time Offset, bit 1 Concentration + Type-Sample
Location, bit 2 unit (0 kg/L, 1 mol/L), bit 3 Sensor Status Annunciation, bit 4 Context Information
Follows, bits 5-7 RFU (kept as sent). Fields in order: Flags u8, Sequence Number u16, Base Time
(Date Time, 7), Time Offset sint16 minutes, Concentration SFLOAT, Type-Sample Location u8 (low
nibble Type, high nibble Sample Location), Sensor Status u16.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import ClassVar, Literal, Self

from devices.codecs._reader import Reader, forbid, open_enum, put_s16, put_uint, require
from devices.codecs.date_time import TimeStamp, put_record_time, read_record_time
from devices.codecs.errors import EncodeError
from devices.codecs.profiles import get_profile
from devices.codecs.sfloat import SFloat
from devices.special import Special
from devices.units import MG_DL_PER_MMOL_L

__all__ = ["GlucoseMeasurement", "GlucoseSampleLocation", "GlucoseType", "SensorStatus"]

_NAME = "GlucoseMeasurement"
TIME_OFFSET_OVERRUN = 0x7FFF
TIME_OFFSET_UNDERRUN = -0x8000

FLAG_TIME_OFFSET = 0x01
FLAG_CONCENTRATION = 0x02
FLAG_MOL_PER_L = 0x04
FLAG_SENSOR_STATUS = 0x08
FLAG_CONTEXT_FOLLOWS = 0x10


class GlucoseType(IntEnum):
    """Type (low nibble of Type-Sample Location); 0 and 11-15 RFU stay ints."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class GlucoseSampleLocation(IntEnum):
    """Sample Location (high nibble); 0 and 5-14 RFU stay ints."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class SensorStatus(IntEnum):
    """Bit numbers of the Sensor Status Annunciation field; bits 12-15 RFU."""

    DEVICE_BATTERY_LOW = 0
    SENSOR_MALFUNCTION = 1
    SAMPLE_SIZE_INSUFFICIENT = 2
    STRIP_INSERTION_ERROR = 3
    STRIP_TYPE_INCORRECT = 4
    RESULT_TOO_HIGH = 5
    RESULT_TOO_LOW = 6
    TEMPERATURE_TOO_HIGH = 7
    TEMPERATURE_TOO_LOW = 8
    READ_INTERRUPTED = 9
    GENERAL_DEVICE_FAULT = 10
    TIME_FAULT = 11


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    """One stored glucose record. `flags` are kept as sent (RFU bits included).

    `profile` is the quirk profile it was decoded under; `base_time_month_13` records that the
    `isens` profile repaired month 13 to January, so that `bytes()` gives back the device's bytes.
    """

    UUID: ClassVar[int] = 0x2A18
    flags: int
    sequence_number: int
    base_time: TimeStamp
    time_offset_min: int | None = None
    concentration: SFloat | None = None
    type: GlucoseType | int | None = None
    sample_location: GlucoseSampleLocation | int | None = None
    sensor_status: int | None = None
    profile: str | None = None
    base_time_month_13: bool = False

    @property
    def concentration_unit(self) -> Literal["kg/L", "mol/L"]:
        """The unit flag (bit 2) as the spec writes it."""
        return "mol/L" if self.flags & FLAG_MOL_PER_L else "kg/L"

    @property
    def context_follows(self) -> bool:
        """Flag bit 4: a Glucose Measurement Context with this sequence number follows."""
        return bool(self.flags & FLAG_CONTEXT_FOLLOWS)

    @property
    def user_facing_time(self) -> datetime | None:
        """Base Time + Time Offset; None if (partly) unknown or the offset is overrun/underrun."""
        if not isinstance(self.base_time, datetime):
            return None
        offset = self.time_offset_min or 0
        if offset in (TIME_OFFSET_OVERRUN, TIME_OFFSET_UNDERRUN):
            return None
        return self.base_time + timedelta(minutes=offset)

    @property
    def concentration_mmol_l(self) -> float | Special | None:
        """The concentration in mmol/L (mol/L x 1e3, or kg/L x 1e5 mg/dL / 18.016)."""
        if self.concentration is None:
            return None
        value = self.concentration.value
        if isinstance(value, Special):
            return value
        if self.flags & FLAG_MOL_PER_L:
            return value * 1e3
        return value * 1e5 / MG_DL_PER_MMOL_L

    @property
    def concentration_mg_dl(self) -> float | Special | None:
        """The concentration in mg/dL (kg/L x 1e5, or mol/L x 1e3 x 18.016)."""
        if self.concentration is None:
            return None
        value = self.concentration.value
        if isinstance(value, Special):
            return value
        if self.flags & FLAG_MOL_PER_L:
            return value * 1e3 * MG_DL_PER_MMOL_L
        return value * 1e5

    @classmethod
    def build(
        cls,
        *,
        sequence_number: int,
        base_time: TimeStamp,
        time_offset_min: int | None = None,
        concentration: SFloat | None = None,
        concentration_unit: Literal["kg/L", "mol/L"] = "mol/L",
        type: GlucoseType | int | None = None,
        sample_location: GlucoseSampleLocation | int | None = None,
        sensor_status: int | None = None,
        context_follows: bool = False,
    ) -> Self:
        """A record with the flags worked out from the fields given.

        Raises:
            EncodeError: concentration without type and location, or the other way round.
        """
        has_conc = concentration is not None
        if has_conc != (type is not None) or has_conc != (sample_location is not None):
            raise EncodeError(_NAME, "concentration", "needs type and sample_location with it")
        flags = (
            (FLAG_TIME_OFFSET if time_offset_min is not None else 0)
            | (FLAG_CONCENTRATION if has_conc else 0)
            | (FLAG_MOL_PER_L if concentration_unit == "mol/L" else 0)
            | (FLAG_SENSOR_STATUS if sensor_status is not None else 0)
            | (FLAG_CONTEXT_FOLLOWS if context_follows else 0)
        )
        made = cls(
            flags,
            sequence_number,
            base_time,
            time_offset_min,
            concentration,
            type,
            sample_location,
            sensor_status,
        )
        bytes(made)  # range checks, so a bad record fails here and not on the radio
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a notification.

        Raises:
            DecodeError: truncated, impossible base time, or bytes left over.
            UnknownProfileError: `profile` names no profile.
        """
        quirks = get_profile(profile)
        repair = quirks is not None and quirks.base_time_month_13_repair
        r = Reader(_NAME, data)
        flags = r.u8("flags")
        sequence_number = r.u16("sequence_number")
        base_time, repaired = read_record_time(
            r, "base_time", repair_month_13=repair, partial_ok=True
        )
        time_offset = r.s16("time_offset_min") if flags & FLAG_TIME_OFFSET else None
        concentration = gtype = location = None
        if flags & FLAG_CONCENTRATION:
            concentration = r.sfloat("concentration")
            nibbles = r.u8("type_sample_location")
            gtype = open_enum(GlucoseType, nibbles & 0x0F)
            location = open_enum(GlucoseSampleLocation, nibbles >> 4)
        status = r.u16("sensor_status") if flags & FLAG_SENSOR_STATUS else None
        r.end()
        return cls(
            flags,
            sequence_number,
            base_time,
            time_offset,
            concentration,
            gtype,
            location,
            status,
            None if quirks is None else quirks.name,
            repaired,
        )

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        put_uint(out, self.sequence_number, 2, _NAME, "sequence_number")
        put_record_time(out, self.base_time, _NAME, "base_time", month_13=self.base_time_month_13)
        if self.flags & FLAG_TIME_OFFSET:
            put_s16(
                out,
                require(self.time_offset_min, _NAME, "time_offset_min"),
                _NAME,
                "time_offset_min",
            )
        else:
            forbid(self.time_offset_min, _NAME, "time_offset_min")
        if self.flags & FLAG_CONCENTRATION:
            out += bytes(require(self.concentration, _NAME, "concentration"))
            gtype = require(self.type, _NAME, "type")
            location = require(self.sample_location, _NAME, "sample_location")
            if not (0 <= gtype <= 15 and 0 <= location <= 15):
                raise EncodeError(_NAME, "type_sample_location", "each nibble must be 0-15")
            out.append(location << 4 | gtype)
        else:
            for name in ("concentration", "type", "sample_location"):
                forbid(getattr(self, name), _NAME, name)
        if self.flags & FLAG_SENSOR_STATUS:
            put_uint(
                out, require(self.sensor_status, _NAME, "sensor_status"), 2, _NAME, "sensor_status"
            )
        else:
            forbid(self.sensor_status, _NAME, "sensor_status")
        return bytes(out)
