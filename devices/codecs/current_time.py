"""Current Time 0x2A2B (Current Time Service, read/notify, write optional).

Spec: SIG GATT XML `org.bluetooth.characteristic.current_time.xml`, `exact_time_256.xml`,
`day_of_week.xml` (docs/device-profiles.md section 2.8): Date Time (7), Day of Week u8 (0 unknown,
1 Monday .. 7 Sunday, 8-255 RFU), Fractions256 u8 (1/256 s), Adjust Reason u8 (bit 0 manual
update, 1 external reference, 2 time zone change, 3 DST change). Exactly 10 bytes in strict mode
(some servers send 9, docs/device-profiles.md quirk 8: that is a `DecodeError` here).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, IntFlag
from typing import ClassVar, Self

from devices.codecs._reader import Reader, open_enum, put_uint
from devices.codecs.date_time import put_record_time, read_record_time

__all__ = ["AdjustReason", "CurrentTime", "DayOfWeek"]

_NAME = "CurrentTime"


class DayOfWeek(IntEnum):
    """Day of Week; 8-255 are RFU and stay ints."""

    UNKNOWN = 0
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7


class AdjustReason(IntFlag):
    """Adjust Reason bits (4-7 RFU, kept in the raw int)."""

    MANUAL_TIME_UPDATE = 1 << 0
    EXTERNAL_REFERENCE_TIME_UPDATE = 1 << 1
    CHANGE_OF_TIME_ZONE = 1 << 2
    CHANGE_OF_DST = 1 << 3


@dataclass(frozen=True, slots=True)
class CurrentTime:
    """The server's clock: a naive `date_time` (None when never set) and its qualifiers."""

    UUID: ClassVar[int] = 0x2A2B
    date_time: datetime | None
    day_of_week: DayOfWeek | int = DayOfWeek.UNKNOWN
    fractions256: int = 0
    adjust_reason: int = 0

    @classmethod
    def build(
        cls, moment: datetime, *, fractions256: int | None = None, adjust_reason: int = 0
    ) -> Self:
        """The Current Time for a naive (device-local) moment, day of week filled in.

        `fractions256` defaults to the microseconds rounded down to 1/256 s.
        """
        fraction = moment.microsecond * 256 // 1_000_000 if fractions256 is None else fractions256
        return cls(
            moment.replace(microsecond=0), DayOfWeek(moment.isoweekday()), fraction, adjust_reason
        )

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly 10 bytes. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, impossible date, or bytes left over.
        """
        r = Reader(_NAME, data)
        moment, _ = read_record_time(r, "date_time")
        day = open_enum(DayOfWeek, r.u8("day_of_week"))
        fractions = r.u8("fractions256")
        reason = r.u8("adjust_reason")
        r.end()
        return cls(moment, day, fractions, reason)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_record_time(out, self.date_time, _NAME, "date_time")
        put_uint(out, self.day_of_week, 1, _NAME, "day_of_week")
        put_uint(out, self.fractions256, 1, _NAME, "fractions256")
        put_uint(out, self.adjust_reason, 1, _NAME, "adjust_reason")
        return bytes(out)
