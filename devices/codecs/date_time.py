"""Date Time 0x2A08, and the 7-byte Date Time field inside records.

Layout (SIG GATT XML `org.bluetooth.characteristic.date_time.xml`; docs/device-profiles.md section
1): year uint16 (1582-9999, 0 = unknown), month uint8 (1-12, 0 = unknown), day uint8 (1-31, 0 =
unknown), hours 0-23, minutes 0-59, seconds 0-59.

`DateTime` (the characteristic) keeps every field as sent, so a partly unknown date survives a
round trip. Date Time *fields inside records* decode to a naive `datetime` as the device sent
it, or None when all seven bytes are zero (clock never set). A partly unknown time (year 0 but
a month, say) cannot be a `datetime`:
- measurement `time_stamp` fields (BPM, ICP, weight, temperature, PLX) and the Glucose
  Measurement's `base_time` keep it as a `DateTime` (`read_time_stamp`,
  `read_record_time(..., partial_ok=True)`), because the spec allows it and real payloads carry
  it (Nordic's BloodPressureMeasurementDataCallbackTest sends year 0, April 17): the record is
  real even when the meter's calendar was never set, and dropping it would lose a reading;
- Current Time and RACP time filters reject it with a `DecodeError`: a clock or a filter
  without a full date cannot be used.
Impossible dates (month 13, February 31) are always errors; the i-SENS month-13 repair lives
only in the `isens` quirk profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal, Self, overload

from devices.codecs._reader import Reader, put_uint
from devices.codecs.errors import EncodeError

__all__ = [
    "DATE_TIME_SIZE",
    "DateTime",
    "TimeStamp",
    "device_time_text",
    "put_record_time",
    "put_time_stamp",
    "read_record_time",
    "read_time_stamp",
]

DATE_TIME_SIZE = 7
_LIMITS = (("month", 12), ("day", 31), ("hours", 23), ("minutes", 59), ("seconds", 59))


def _read_fields(reader: Reader, field: str, *, month_13_ok: bool = False) -> tuple[int, ...]:
    start = reader.offset
    reader.take(DATE_TIME_SIZE, field)  # length check for the whole field first
    reader.offset = start
    year = reader.u16(f"{field}.year")
    if year != 0 and not 1582 <= year <= 9999:
        raise reader.fail(f"{field}.year", f"{year} outside 1582-9999", start)
    values = [year]
    for name, limit in _LIMITS:
        at = reader.offset
        value = reader.u8(f"{field}.{name}")
        if value > limit and not (name == "month" and value == 13 and month_13_ok):
            raise reader.fail(f"{field}.{name}", f"{value} is above {limit}", at)
        values.append(value)
    year, month, day = values[:3]
    if month and day:
        try:  # with the year unknown, check against a leap year (February 29 can exist)
            datetime(year or 2000, 1 if month == 13 else month, day)
        except ValueError:
            raise reader.fail(
                f"{field}.day", f"{year:04}-{month:02}-{day:02} is not a date", start + 3
            ) from None
    return tuple(values)


@overload
def read_record_time(
    reader: Reader, field: str, *, repair_month_13: bool = ..., partial_ok: Literal[False] = ...
) -> tuple[datetime | None, bool]: ...
@overload
def read_record_time(
    reader: Reader, field: str, *, repair_month_13: bool = ..., partial_ok: bool
) -> tuple[TimeStamp, bool]: ...
def read_record_time(
    reader: Reader, field: str, *, repair_month_13: bool = False, partial_ok: bool = False
) -> tuple[TimeStamp, bool]:
    """Read a record's Date Time field; return (time or None, whether month 13 was repaired).

    With `partial_ok`, a partly unknown date (zero year, month or day) comes back as the
    `DateTime` of its fields as sent instead of raising.

    Raises:
        DecodeError: truncated, out of range, impossible, or partly unknown (without
            `partial_ok`).
    """
    start = reader.offset
    year, month, day, hours, minutes, seconds = _read_fields(
        reader, field, month_13_ok=repair_month_13
    )
    if not (year or month or day or hours or minutes or seconds):
        return None, False
    if not (year and month and day):
        if partial_ok and month != 13:
            return DateTime(year, month, day, hours, minutes, seconds), False
        raise reader.fail(field, "partly unknown date (a zero year, month or day)", start)
    repaired = month == 13
    return datetime(year, 1 if repaired else month, day, hours, minutes, seconds), repaired


def put_record_time(
    out: bytearray,
    value: TimeStamp,
    characteristic: str,
    field: str,
    *,
    month_13: bool = False,
) -> None:
    """Append a record's Date Time field (None -> seven zero bytes).

    Raises:
        EncodeError: the year is outside 1582-9999, or a month-13 repair is asked of a
            non-January time.
    """
    if value is None:
        out += bytes(DATE_TIME_SIZE)
        return
    if isinstance(value, DateTime):
        put_time_stamp(out, value, characteristic, field)
        return
    if value.tzinfo is not None:
        raise EncodeError(characteristic, field, "Date Time is naive device time, not aware")
    if not 1582 <= value.year <= 9999:
        raise EncodeError(characteristic, f"{field}.year", f"{value.year} outside 1582-9999")
    if month_13 and value.month != 1:
        raise EncodeError(characteristic, f"{field}.month", "a month-13 repair is always January")
    put_uint(out, value.year, 2, characteristic, field)
    out += bytes(
        (13 if month_13 else value.month, value.day, value.hour, value.minute, value.second)
    )


@dataclass(frozen=True, slots=True)
class DateTime:
    """Date Time 0x2A08: every field as sent; zero year/month/day mean unknown."""

    UUID: ClassVar[int] = 0x2A08
    year: int
    month: int
    day: int
    hours: int
    minutes: int
    seconds: int

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly seven bytes. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, out of range, impossible date, or trailing bytes.
        """
        reader = Reader("DateTime", data)
        fields = _read_fields(reader, "date_time")
        reader.end()
        return cls(*fields)

    @classmethod
    def from_datetime(cls, value: datetime | None) -> Self:
        """The Date Time of a naive datetime (None -> all unknown)."""
        if value is None:
            return cls(0, 0, 0, 0, 0, 0)
        return cls(value.year, value.month, value.day, value.hour, value.minute, value.second)

    @property
    def value(self) -> datetime | None:
        """The naive datetime, or None when the year, month or day is unknown."""
        if not (self.year and self.month and self.day):
            return None
        return datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.year, 2, "DateTime", "year")
        for name, limit in _LIMITS:
            value = getattr(self, name)
            if not 0 <= value <= limit:
                raise EncodeError("DateTime", name, f"{value} outside 0-{limit}")
            out.append(value)
        return bytes(out)


TimeStamp = datetime | DateTime | None


def device_time_text(value: TimeStamp) -> str | None:
    """The raw device time as ``YYYY-MM-DDTHH:MM:SS``, unknown fields as the zeros sent.

    `datetime.isoformat()` for a complete time (no fraction: Date Time has whole seconds), and
    the fields as sent for a partly unknown one (``0000-04-17T10:20:00``), so two records of a
    meter whose calendar was never set still differ by what the meter said.
    """
    if value is None:
        return None
    if isinstance(value, DateTime):
        return (
            f"{value.year:04}-{value.month:02}-{value.day:02}"
            f"T{value.hours:02}:{value.minutes:02}:{value.seconds:02}"
        )
    return value.isoformat()


def read_time_stamp(reader: Reader, field: str) -> TimeStamp:
    """Read a measurement time stamp: a `datetime`, None (all zeros), or a partly unknown
    `DateTime`.

    Raises:
        DecodeError: truncated, out of range, or an impossible date.
    """
    fields = _read_fields(reader, field)
    year, month, day = fields[:3]
    if year and month and day:
        return datetime(year, month, day, fields[3], fields[4], fields[5])
    if not any(fields):
        return None
    return DateTime(*fields)


def put_time_stamp(out: bytearray, value: TimeStamp, characteristic: str, field: str) -> None:
    """Append a measurement time stamp written by `read_time_stamp`.

    Raises:
        EncodeError: the value is out of range, or a `DateTime` that should be a datetime.
    """
    if isinstance(value, DateTime):
        if value.value is not None or not any(bytes(value)):
            raise EncodeError(characteristic, field, "a complete or all-zero date is not partial")
        out += bytes(value)
    else:
        put_record_time(out, value, characteristic, field)
