"""PLX Spot-check Measurement 0x2A5E (Pulse Oximeter Service, indicate).

Spec: PLXS 1.0 / SIG GATT XML `org.bluetooth.characteristic.plx_spot_check_measurement.xml`
(docs/device-profiles.md section 2.9). Flags: bit 0 Timestamp, bit 1 Measurement Status (u16), bit 2
Device and Sensor Status (u24), bit 3 Pulse Amplitude Index (SFLOAT %), bit 4 device clock is not
set; bits 5-7 RFU, kept as sent. Body: SpO2 SFLOAT %, PR SFLOAT bpm, then the flagged fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.date_time import TimeStamp, put_time_stamp, read_time_stamp
from devices.codecs.sfloat import SFloat

__all__ = ["PlxSpotCheckMeasurement"]

_NAME = "PlxSpotCheckMeasurement"
FLAG_TIME_STAMP = 0x01
FLAG_MEASUREMENT_STATUS = 0x02
FLAG_DEVICE_SENSOR_STATUS = 0x04
FLAG_PULSE_AMPLITUDE_INDEX = 0x08
FLAG_CLOCK_NOT_SET = 0x10


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    """One SpO2 spot check: `spo2_pct` and `pulse_rate_bpm` as SFLOAT."""

    UUID: ClassVar[int] = 0x2A5E
    flags: int
    spo2_pct: SFloat
    pulse_rate_bpm: SFloat
    time_stamp: TimeStamp = None
    measurement_status: int | None = None
    device_and_sensor_status: int | None = None
    pulse_amplitude_index_pct: SFloat | None = None

    @property
    def device_clock_not_set(self) -> bool:
        """Flag bit 4: the time stamp (if any) is not to be trusted."""
        return bool(self.flags & FLAG_CLOCK_NOT_SET)

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
        spo2 = r.sfloat("spo2_pct")
        rate = r.sfloat("pulse_rate_bpm")
        stamp = read_time_stamp(r, "time_stamp") if flags & FLAG_TIME_STAMP else None
        status = r.u16("measurement_status") if flags & FLAG_MEASUREMENT_STATUS else None
        device = (
            r.uint(3, "device_and_sensor_status") if flags & FLAG_DEVICE_SENSOR_STATUS else None
        )
        pai = r.sfloat("pulse_amplitude_index_pct") if flags & FLAG_PULSE_AMPLITUDE_INDEX else None
        r.end()
        return cls(flags, spo2, rate, stamp, status, device, pai)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        out += bytes(self.spo2_pct) + bytes(self.pulse_rate_bpm)
        if self.flags & FLAG_TIME_STAMP:
            put_time_stamp(out, self.time_stamp, _NAME, "time_stamp")
        else:
            forbid(self.time_stamp, _NAME, "time_stamp")
        put_status(
            out,
            self.flags & FLAG_MEASUREMENT_STATUS,
            value=self.measurement_status,
            field="measurement_status",
            size=2,
            name=_NAME,
        )
        put_status(
            out,
            self.flags & FLAG_DEVICE_SENSOR_STATUS,
            value=self.device_and_sensor_status,
            field="device_and_sensor_status",
            size=3,
            name=_NAME,
        )
        if self.flags & FLAG_PULSE_AMPLITUDE_INDEX:
            out += bytes(
                require(self.pulse_amplitude_index_pct, _NAME, "pulse_amplitude_index_pct")
            )
        else:
            forbid(self.pulse_amplitude_index_pct, _NAME, "pulse_amplitude_index_pct")
        return bytes(out)


def put_status(
    out: bytearray, flagged: int, *, value: int | None, field: str, size: int, name: str
) -> None:
    """Append an optional status field of `size` bytes.

    Raises:
        EncodeError: the field disagrees with its flag or does not fit.
    """
    if flagged:
        put_uint(out, require(value, name, field), size, name, field)
    else:
        forbid(value, name, field)
