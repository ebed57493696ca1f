"""CGM Measurement 0x2AA7 (Continuous Glucose Monitoring Service, notify), with E2E-CRC.

Spec: CGMS 1.0.1 / SIG GATT XML `org.bluetooth.characteristic.cgm_measurement.xml`
(docs/device-profiles.md section 2.9). Size u8 (the record's length, itself included), Flags u8,
Glucose Concentration SFLOAT mg/dL, Time Offset u16 minutes since session start, then the Sensor
Status Annunciation octets in the order Status (flag bit 7), Cal/Temp (bit 6), Warning (bit 5) -
each only if its flag is set (nrfconnect/sdk-nrf `cgms.c` writes them in that order) - then Trend
SFLOAT mg/dL/min (bit 0), Quality SFLOAT % (bit 1), and an optional E2E-CRC u16.

The CRC is present when Size is the computed length + 2 (Nordic's parser infers it the same
way); it is CRC-16/MCRF4XX (reflected poly 0x1021, init 0xFFFF, no final xor) over the record
without the CRC, and a mismatch is a `DecodeError`. One notification may hold several records
back to back, each starting with its Size (CGMS 1.0.1 3.1: "the Server may send more than one
CGM Measurement record in one notification"; Nordic's parser loops the same way):
`CgmMeasurementNotification` (what `decode(0x2AA7, ...)` returns) holds them all, in order;
`CgmMeasurement.from_bytes` decodes exactly one record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.errors import EncodeError
from devices.codecs.sfloat import SFloat

__all__ = ["CgmMeasurement", "CgmMeasurementNotification", "crc16_mcrf4xx", "split_records"]

_NAME = "CgmMeasurement"
FLAG_TREND = 0x01
FLAG_QUALITY = 0x02
FLAG_WARNING = 0x20
FLAG_CAL_TEMP = 0x40
FLAG_STATUS = 0x80
MIN_RECORD_OCTETS = 6  # Size, Flags, Glucose Concentration, Time Offset
_OCTETS = (("status", FLAG_STATUS), ("cal_temp", FLAG_CAL_TEMP), ("warning", FLAG_WARNING))


def crc16_mcrf4xx(data: bytes) -> int:
    """CRC-16/MCRF4XX: reflected polynomial 0x1021 (0x8408), init 0xFFFF, no final xor."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


@dataclass(frozen=True, slots=True)
class CgmMeasurement:
    """One CGM record. `with_e2e_crc` says whether the record carries (a valid) E2E-CRC."""

    UUID: ClassVar[int] = 0x2AA7
    flags: int
    glucose_concentration_mg_dl: SFloat
    time_offset_min: int
    status: int | None = None
    cal_temp: int | None = None
    warning: int | None = None
    trend_mg_dl_min: SFloat | None = None
    quality_pct: SFloat | None = None
    with_e2e_crc: bool = False

    @property
    def sensor_status_annunciation(self) -> int:
        """The 24-bit annunciation as the XML numbers it: status 0-7, cal/temp 8-15,
        warning 16-23 (absent octets are zero)."""
        return (self.status or 0) | (self.cal_temp or 0) << 8 | (self.warning or 0) << 16

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly one record. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, a Size that matches neither layout, a bad E2E-CRC, or
                bytes after the record (several records: use `split_records`).
        """
        r = Reader(_NAME, data)
        record = _read_record(r)
        r.end()
        return record  # type: ignore[return-value]

    def __bytes__(self) -> bytes:
        body = bytearray()
        put_uint(body, self.flags, 1, _NAME, "flags")
        body += bytes(self.glucose_concentration_mg_dl)
        put_uint(body, self.time_offset_min, 2, _NAME, "time_offset_min")
        for name, bit in _OCTETS:
            value: int | None = getattr(self, name)
            if self.flags & bit:
                put_uint(body, require(value, _NAME, name), 1, _NAME, name)
            else:
                forbid(value, _NAME, name)
        for name, bit in (("trend_mg_dl_min", FLAG_TREND), ("quality_pct", FLAG_QUALITY)):
            sfloat: SFloat | None = getattr(self, name)
            if self.flags & bit:
                body += bytes(require(sfloat, _NAME, name))
            else:
                forbid(sfloat, _NAME, name)
        size = len(body) + 1 + (2 if self.with_e2e_crc else 0)
        if size > 0xFF:  # pragma: no cover - the largest record is 17 bytes
            raise EncodeError(_NAME, "size", f"{size} does not fit a uint8")
        record = bytes((size,)) + body
        if self.with_e2e_crc:
            record += crc16_mcrf4xx(record).to_bytes(2, "little")
        return record


def _read_record(r: Reader) -> CgmMeasurement:
    start = r.offset
    size = r.u8("size")
    flags = r.u8("flags")
    concentration = r.sfloat("glucose_concentration_mg_dl")
    offset = r.u16("time_offset_min")
    octets = {name: r.u8(name) if flags & bit else None for name, bit in _OCTETS}
    trend = r.sfloat("trend_mg_dl_min") if flags & FLAG_TREND else None
    quality = r.sfloat("quality_pct") if flags & FLAG_QUALITY else None
    computed = r.offset - start
    if size not in (computed, computed + 2):
        raise r.fail("size", f"{size} is neither {computed} nor {computed + 2} (with CRC)", start)
    with_crc = size == computed + 2
    if with_crc:
        at = r.offset
        crc = r.u16("e2e_crc")
        expected = crc16_mcrf4xx(r.data[start:at])
        if crc != expected:
            raise r.fail("e2e_crc", f"0x{crc:04X} != computed 0x{expected:04X}", at)
    return CgmMeasurement(
        flags,
        concentration,
        offset,
        octets["status"],
        octets["cal_temp"],
        octets["warning"],
        trend,
        quality,
        with_crc,
    )


def split_records(data: bytes | bytearray | memoryview) -> tuple[CgmMeasurement, ...]:
    """Decode every size-prefixed record of one 0x2AA7 notification.

    Raises:
        DecodeError: any record is invalid (the error's offset is within the whole payload),
            or fewer bytes than the smallest record are left after the last one (`$trailing`).
    """
    r = Reader(_NAME, data)
    records = [_read_record(r)]
    while r.remaining >= MIN_RECORD_OCTETS:
        records.append(_read_record(r))
    r.end()
    return tuple(records)


@dataclass(frozen=True, slots=True)
class CgmMeasurementNotification:
    """One 0x2AA7 notification: one or more CGM records, in the order sent."""

    UUID: ClassVar[int] = 0x2AA7
    records: tuple[CgmMeasurement, ...]

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode every record. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: a record is invalid, or bytes too few for a record are left over.
        """
        return cls(split_records(data))

    def __bytes__(self) -> bytes:
        if not self.records:
            raise EncodeError(_NAME, "records", "a notification carries at least one record")
        return b"".join(bytes(record) for record in self.records)
