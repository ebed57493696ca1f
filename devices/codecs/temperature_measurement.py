"""Temperature Measurement 0x2A1C (Health Thermometer Service, indicate).

Spec: HTS 1.0 / SIG GATT XML `org.bluetooth.characteristic.temperature_measurement.xml`
(docs/device-profiles.md section 2.9). Flags: bit 0 Fahrenheit (else Celsius), bit 1 Time Stamp, bit
2 Temperature Type; bits 3-7 RFU, kept as sent. Fields: Temperature FLOAT, Time Stamp (Date Time),
Temperature Type u8 (1 armpit .. 9 tympanum).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import ClassVar, Literal, Self

from devices.codecs._reader import Reader, forbid, open_enum, put_uint, require
from devices.codecs.date_time import TimeStamp, put_time_stamp, read_time_stamp
from devices.codecs.sfloat import Float

__all__ = ["TemperatureMeasurement", "TemperatureType"]

_NAME = "TemperatureMeasurement"
FLAG_FAHRENHEIT = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_TYPE = 0x04


class TemperatureType(IntEnum):
    """Temperature Type (SIG XML `temperature_type.xml`); other values stay ints."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTRO_INTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """A body temperature in `unit`."""

    UUID: ClassVar[int] = 0x2A1C
    flags: int
    temperature: Float
    time_stamp: TimeStamp = None
    temperature_type: TemperatureType | int | None = None

    @property
    def unit(self) -> Literal["Cel", "[degF]"]:
        """Flag bit 0, as a UCUM code."""
        return "[degF]" if self.flags & FLAG_FAHRENHEIT else "Cel"

    @classmethod
    def build(
        cls,
        temperature: Float,
        *,
        fahrenheit: bool = False,
        time_stamp: datetime | None = None,
        temperature_type: TemperatureType | int | None = None,
    ) -> Self:
        """A measurement with the flags worked out from the fields given.

        Raises:
            EncodeError: a value does not fit its field.
        """
        flags = (
            (FLAG_FAHRENHEIT if fahrenheit else 0)
            | (FLAG_TIME_STAMP if time_stamp is not None else 0)
            | (FLAG_TYPE if temperature_type is not None else 0)
        )
        made = cls(flags, temperature, time_stamp, temperature_type)
        bytes(made)
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode an indication. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, impossible time stamp, or bytes left over.
        """
        r = Reader(_NAME, data)
        flags = r.u8("flags")
        temperature = r.float32("temperature")
        stamp = read_time_stamp(r, "time_stamp") if flags & FLAG_TIME_STAMP else None
        kind = open_enum(TemperatureType, r.u8("temperature_type")) if flags & FLAG_TYPE else None
        r.end()
        return cls(flags, temperature, stamp, kind)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        out += bytes(self.temperature)
        if self.flags & FLAG_TIME_STAMP:
            put_time_stamp(out, self.time_stamp, _NAME, "time_stamp")
        else:
            forbid(self.time_stamp, _NAME, "time_stamp")
        if self.flags & FLAG_TYPE:
            kind = require(self.temperature_type, _NAME, "temperature_type")
            put_uint(out, kind, 1, _NAME, "temperature_type")
        else:
            forbid(self.temperature_type, _NAME, "temperature_type")
        return bytes(out)
