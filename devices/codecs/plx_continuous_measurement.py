"""PLX Continuous Measurement 0x2A5F (Pulse Oximeter Service, notify).

Spec: PLXS 1.0 / SIG GATT XML `org.bluetooth.characteristic.plx_continuous_measurement.xml`.
Flags: bit 0 SpO2PR-Fast present, bit 1 SpO2PR-Slow present, bit 2 Measurement Status (u16),
bit 3 Device and Sensor Status (u24), bit 4 Pulse Amplitude Index (SFLOAT %); bits 5-7 RFU,
kept as sent. Body: SpO2PR-Normal (SpO2 SFLOAT %, PR SFLOAT bpm), then the flagged fields in
flag order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, forbid, put_uint, require
from devices.codecs.plx_spot_check_measurement import put_status
from devices.codecs.sfloat import SFloat

__all__ = ["PlxContinuousMeasurement"]

_NAME = "PlxContinuousMeasurement"
FLAG_FAST = 0x01
FLAG_SLOW = 0x02
FLAG_MEASUREMENT_STATUS = 0x04
FLAG_DEVICE_SENSOR_STATUS = 0x08
FLAG_PULSE_AMPLITUDE_INDEX = 0x10


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    """A continuous oximetry sample: normal, and optionally fast and slow, SpO2 and PR."""

    UUID: ClassVar[int] = 0x2A5F
    flags: int
    spo2_pct: SFloat
    pulse_rate_bpm: SFloat
    spo2_fast_pct: SFloat | None = None
    pulse_rate_fast_bpm: SFloat | None = None
    spo2_slow_pct: SFloat | None = None
    pulse_rate_slow_bpm: SFloat | None = None
    measurement_status: int | None = None
    device_and_sensor_status: int | None = None
    pulse_amplitude_index_pct: SFloat | None = None

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a notification. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated or bytes left over.
        """
        r = Reader(_NAME, data)
        flags = r.u8("flags")
        spo2, rate = r.sfloat("spo2_pct"), r.sfloat("pulse_rate_bpm")
        fast: tuple[SFloat | None, SFloat | None] = (None, None)
        slow: tuple[SFloat | None, SFloat | None] = (None, None)
        if flags & FLAG_FAST:
            fast = (r.sfloat("spo2_fast_pct"), r.sfloat("pulse_rate_fast_bpm"))
        if flags & FLAG_SLOW:
            slow = (r.sfloat("spo2_slow_pct"), r.sfloat("pulse_rate_slow_bpm"))
        status = r.u16("measurement_status") if flags & FLAG_MEASUREMENT_STATUS else None
        device = (
            r.uint(3, "device_and_sensor_status") if flags & FLAG_DEVICE_SENSOR_STATUS else None
        )
        pai = r.sfloat("pulse_amplitude_index_pct") if flags & FLAG_PULSE_AMPLITUDE_INDEX else None
        r.end()
        return cls(flags, spo2, rate, *fast, *slow, status, device, pai)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.flags, 1, _NAME, "flags")
        out += bytes(self.spo2_pct) + bytes(self.pulse_rate_bpm)
        for bit, names in (
            (FLAG_FAST, ("spo2_fast_pct", "pulse_rate_fast_bpm")),
            (FLAG_SLOW, ("spo2_slow_pct", "pulse_rate_slow_bpm")),
        ):
            for field in names:
                value: SFloat | None = getattr(self, field)
                if self.flags & bit:
                    out += bytes(require(value, _NAME, field))
                else:
                    forbid(value, _NAME, field)
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
