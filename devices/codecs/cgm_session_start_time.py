"""CGM Session Start Time 0x2AAA (Continuous Glucose Monitoring Service, read/write).

Spec: CGMS 1.0.1 3.5 / SIG GATT XML `org.bluetooth.characteristic.cgm_session_start_time.xml`.
Session Start Time (Date Time, the sensor's local time), Time Zone sint8 (offset from UTC in
15-minute steps, -48..+56, -128 unknown), DST Offset uint8 (0 standard, 2 +0.5 h, 4 +1 h,
8 +2 h, 255 unknown), then an optional E2E-CRC uint16 (present when the sensor supports
E2E-CRC, CRC-16/MCRF4XX over the first nine octets). Every CGM Measurement's Time Offset counts
minutes from this moment, so the UTC time of a record is start - zone - DST + offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Self

from devices.codecs._reader import Reader, put_uint
from devices.codecs.cgm_measurement import crc16_mcrf4xx
from devices.codecs.date_time import put_record_time, read_record_time
from devices.codecs.errors import EncodeError

__all__ = ["CgmSessionStartTime"]

_NAME = "CgmSessionStartTime"
TIME_ZONE_UNKNOWN = -128
DST_UNKNOWN = 255
_DST_MINUTES = {0: 0, 2: 30, 4: 60, 8: 120}


@dataclass(frozen=True, slots=True)
class CgmSessionStartTime:
    """When the sensor session started, in the sensor's local time with its zone and DST."""

    UUID: ClassVar[int] = 0x2AAA
    start: datetime | None  # naive local time; None = all zeros (not started / unknown)
    time_zone_15min: int
    dst_offset: int
    with_e2e_crc: bool = False

    @property
    def start_utc(self) -> datetime | None:
        """The session start in UTC, or None when the start, zone or DST is unknown."""
        if (
            self.start is None
            or self.time_zone_15min == TIME_ZONE_UNKNOWN
            or self.dst_offset not in _DST_MINUTES
        ):
            return None
        shift = timedelta(minutes=15 * self.time_zone_15min + _DST_MINUTES[self.dst_offset])
        return (self.start - shift).replace(tzinfo=UTC)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode (with or without the E2E-CRC). `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, an impossible date, a time zone outside -48..56 (and not
                -128), a wrong E2E-CRC, or bytes left over.
        """
        r = Reader(_NAME, data)
        start, _ = read_record_time(r, "start")
        zone = r.uint(1, "time_zone_15min")
        zone = zone - 256 if zone > 127 else zone
        if zone != TIME_ZONE_UNKNOWN and not -48 <= zone <= 56:
            raise r.fail("time_zone_15min", f"{zone} outside -48..56", 7)
        dst = r.u8("dst_offset")
        with_crc = r.remaining > 0
        if with_crc:
            crc = r.u16("e2e_crc")
            expected = crc16_mcrf4xx(r.data[:9])
            if crc != expected:
                raise r.fail("e2e_crc", f"0x{crc:04X} != computed 0x{expected:04X}", 9)
        r.end()
        return cls(start, zone, dst, with_crc)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_record_time(out, self.start, _NAME, "start")
        if self.time_zone_15min != TIME_ZONE_UNKNOWN and not -48 <= self.time_zone_15min <= 56:
            raise EncodeError(_NAME, "time_zone_15min", f"{self.time_zone_15min} outside -48..56")
        put_uint(out, self.time_zone_15min & 0xFF, 1, _NAME, "time_zone_15min")
        put_uint(out, self.dst_offset, 1, _NAME, "dst_offset")
        if self.with_e2e_crc:
            out += crc16_mcrf4xx(bytes(out)).to_bytes(2, "little")
        return bytes(out)
