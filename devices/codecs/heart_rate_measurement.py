"""Heart Rate Measurement 0x2A37 (Heart Rate Service, notify).

Spec: HRS 1.0 / SIG GATT XML `org.bluetooth.characteristic.heart_rate_measurement.xml`
(docs/device-profiles.md section 2.9). Flags: bit 0 heart rate is uint16 (else uint8), bits 1-2
sensor contact (2 supported but not detected, 3 detected), bit 3 Energy Expended uint16 kJ present,
bit 4 RR-Intervals present (uint16 each, 1/1024 s, as many as fit). Bits 5-7 RFU, kept as sent. The
RR-Interval field, when its flag says present, holds at least one interval (the XML gives it a
minimum of one uint16): the flag set with no interval after it is malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.errors import EncodeError

__all__ = ["HeartRateMeasurement"]

_NAME = "HeartRateMeasurement"
FLAG_UINT16 = 0x01
FLAG_ENERGY = 0x08
FLAG_RR = 0x10
CONTACT_NOT_DETECTED = 2
CONTACT_DETECTED = 3


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """A heart-rate notification; `rr_intervals_1024ths` in units of 1/1024 s."""

    UUID: ClassVar[int] = 0x2A37
    flags: int
    heart_rate_bpm: int
    energy_expended_kj: int | None = None
    rr_intervals_1024ths: tuple[int, ...] | None = None

    @property
    def sensor_contact(self) -> bool | None:
        """True/False when contact detection is supported (bits 1-2 = 3/2), else None."""
        status = (self.flags >> 1) & 0b11
        return None if status < CONTACT_NOT_DETECTED else status == CONTACT_DETECTED

    @property
    def rr_intervals_s(self) -> tuple[float, ...]:
        """RR intervals in seconds."""
        return tuple(rr / 1024 for rr in self.rr_intervals_1024ths or ())

    @classmethod
    def build(
        cls,
        heart_rate_bpm: int,
        *,
        sensor_contact: bool | None = None,
        energy_expended_kj: int | None = None,
        rr_intervals_1024ths: tuple[int, ...] | None = None,
    ) -> Self:
        """A notification with the smallest heart-rate format that fits.

        Raises:
            EncodeError: a value does not fit its field.
        """
        contact = 0 if sensor_contact is None else (3 if sensor_contact else 2)
        flags = (
            (FLAG_UINT16 if heart_rate_bpm > 0xFF else 0)
            | contact << 1
            | (FLAG_ENERGY if energy_expended_kj is not None else 0)
            | (FLAG_RR if rr_intervals_1024ths is not None else 0)
        )
        made = cls(flags, heart_rate_bpm, energy_expended_kj, rr_intervals_1024ths)
        bytes(made)
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a notification. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, the RR flag set without an interval, or an odd byte left
                after the RR intervals.
        """
        r = Reader(_NAME, data)
        flags = r.u8("flags")
        rate = r.u16("heart_rate_bpm") if flags & FLAG_UINT16 else r.u8("heart_rate_bpm")
        energy = r.u16("energy_expended_kj") if flags & FLAG_ENERGY else None
        rr: tuple[int, ...] | None = None
        if flags & FLAG_RR:
            rr = tuple(r.u16("rr_intervals_1024ths") for _ in range(max(1, r.remaining // 2)))
        r.end()
        return cls(flags, rate, energy, rr)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        size = 2 if self.flags & FLAG_UINT16 else 1
        put_uint(out, self.heart_rate_bpm, size, _NAME, "heart_rate_bpm")
        if self.flags & FLAG_ENERGY:
            energy = require(self.energy_expended_kj, _NAME, "energy_expended_kj")
            put_uint(out, energy, 2, _NAME, "energy_expended_kj")
        else:
            forbid(self.energy_expended_kj, _NAME, "energy_expended_kj")
        if self.flags & FLAG_RR:
            intervals = require(self.rr_intervals_1024ths, _NAME, "rr_intervals_1024ths")
            if not intervals:
                raise EncodeError(_NAME, "rr_intervals_1024ths", "the RR flag needs an interval")
            for rr in intervals:
                put_uint(out, rr, 2, _NAME, "rr_intervals_1024ths")
        else:
            forbid(self.rr_intervals_1024ths, _NAME, "rr_intervals_1024ths")
        return bytes(out)
