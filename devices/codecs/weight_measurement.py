"""Weight Measurement 0x2A9D (Weight Scale Service, indicate).

Spec: WSS 1.0 / SIG GATT XML `org.bluetooth.characteristic.weight_measurement.xml`
(docs/device-profiles.md section 2.9). Flags: bit 0 imperial (lb, in), bit 1 Time Stamp, bit 2 User
ID, bit 3 BMI and Height; bits 4-7 RFU, kept as sent. Fields: Weight u16 (0.005 kg or 0.01 lb;
0xFFFF = measurement unsuccessful), Time Stamp (Date Time), User ID u8 (0xFF unknown), BMI u16 (0.1
kg/m2), Height u16 (0.001 m or 0.1 in). Raw integers are kept; properties scale them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.date_time import TimeStamp, put_time_stamp, read_time_stamp

__all__ = ["WeightMeasurement"]

_NAME = "WeightMeasurement"
FLAG_IMPERIAL = 0x01
FLAG_TIME_STAMP = 0x02
FLAG_USER_ID = 0x04
FLAG_BMI_HEIGHT = 0x08
WEIGHT_UNSUCCESSFUL = 0xFFFF
_LB_PER_KG = 2.2046226218


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """A weight (raw resolution units), with optional time, user, BMI and height."""

    UUID: ClassVar[int] = 0x2A9D
    flags: int
    weight_raw: int
    time_stamp: TimeStamp = None
    user_id: int | None = None
    bmi_raw: int | None = None
    height_raw: int | None = None

    @property
    def imperial(self) -> bool:
        """Flag bit 0: pounds and inches instead of kilograms and metres."""
        return bool(self.flags & FLAG_IMPERIAL)

    @property
    def weight_kg(self) -> float | None:
        """The weight in kg (converted from lb if imperial); None when unsuccessful."""
        if self.weight_raw == WEIGHT_UNSUCCESSFUL:
            return None
        if self.imperial:
            return self.weight_raw * 0.01 / _LB_PER_KG
        return self.weight_raw * 0.005

    @property
    def bmi_kg_m2(self) -> float | None:
        """BMI in kg/m2, when sent."""
        return None if self.bmi_raw is None else self.bmi_raw * 0.1

    @property
    def height_m(self) -> float | None:
        """Height in metres (converted from inches if imperial), when sent."""
        if self.height_raw is None:
            return None
        return self.height_raw * 0.1 * 0.0254 if self.imperial else self.height_raw * 0.001

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
        weight = r.u16("weight_raw")
        stamp = read_time_stamp(r, "time_stamp") if flags & FLAG_TIME_STAMP else None
        user = r.u8("user_id") if flags & FLAG_USER_ID else None
        bmi = height = None
        if flags & FLAG_BMI_HEIGHT:
            bmi = r.u16("bmi_raw")
            height = r.u16("height_raw")
        r.end()
        return cls(flags, weight, stamp, user, bmi, height)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        put_uint(out, self.weight_raw, 2, _NAME, "weight_raw")
        if self.flags & FLAG_TIME_STAMP:
            put_time_stamp(out, self.time_stamp, _NAME, "time_stamp")
        else:
            forbid(self.time_stamp, _NAME, "time_stamp")
        if self.flags & FLAG_USER_ID:
            put_uint(out, require(self.user_id, _NAME, "user_id"), 1, _NAME, "user_id")
        else:
            forbid(self.user_id, _NAME, "user_id")
        if self.flags & FLAG_BMI_HEIGHT:
            put_uint(out, require(self.bmi_raw, _NAME, "bmi_raw"), 2, _NAME, "bmi_raw")
            put_uint(out, require(self.height_raw, _NAME, "height_raw"), 2, _NAME, "height_raw")
        else:
            forbid(self.bmi_raw, _NAME, "bmi_raw")
            forbid(self.height_raw, _NAME, "height_raw")
        return bytes(out)
