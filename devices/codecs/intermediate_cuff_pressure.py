"""Intermediate Cuff Pressure 0x2A36 (Blood Pressure Service, notify).

Spec: SIG GATT XML `org.bluetooth.characteristic.intermediate_cuff_pressure.xml`
(docs/device-profiles.md section 2.6): the Blood Pressure Measurement layout, with the current cuff
pressure in the Systolic slot. The Diastolic and MAP slots are unused ("NaN" per spec, 0x0000 in
Nordic's tests); they are kept as sent, for an exact round trip, and mean nothing. Live display
only: never store an intermediate pressure as a reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal, Self

from devices.codecs.blood_pressure_measurement import (
    FLAG_KPA,
    BpFields,
    PulseRateRange,
    bp_flags,
    pulse_rate_range,
    read_bp,
    write_bp,
)
from devices.codecs.date_time import TimeStamp
from devices.codecs.sfloat import SFloat
from devices.special import Special

__all__ = ["IntermediateCuffPressure"]

_NAME = "IntermediateCuffPressure"
_UNUSED = SFloat.from_special(Special.NAN)


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    """The cuff pressure during a measurement; `unused_diastolic`/`unused_mean_arterial` as sent."""

    UUID: ClassVar[int] = 0x2A36
    flags: int
    cuff_pressure: SFloat
    unused_diastolic: SFloat = _UNUSED
    unused_mean_arterial: SFloat = _UNUSED
    time_stamp: TimeStamp = None
    pulse_rate: SFloat | None = None
    user_id: int | None = None
    measurement_status: int | None = None
    profile: str | None = None

    @property
    def unit(self) -> Literal["mmHg", "kPa"]:
        """Flag bit 0 as the spec writes it."""
        return "kPa" if self.flags & FLAG_KPA else "mmHg"

    @property
    def pulse_rate_range(self) -> PulseRateRange | int | None:
        """Measurement Status bits 3-4."""
        return pulse_rate_range(self.measurement_status)

    @classmethod
    def build(
        cls,
        *,
        cuff_pressure: SFloat,
        unit: Literal["mmHg", "kPa"] = "mmHg",
        time_stamp: datetime | None = None,
        pulse_rate: SFloat | None = None,
        user_id: int | None = None,
        measurement_status: int | None = None,
    ) -> Self:
        """A strict notification with NaN in the unused slots, as the spec asks.

        Raises:
            EncodeError: a value is out of range or `unit` is unknown.
        """
        flags = bp_flags(
            unit=unit,
            time_stamp=time_stamp,
            pulse_rate=pulse_rate,
            user_id=user_id,
            measurement_status=measurement_status,
            name=_NAME,
        )
        made = cls(
            flags,
            cuff_pressure,
            _UNUSED,
            _UNUSED,
            time_stamp,
            pulse_rate,
            user_id,
            measurement_status,
        )
        bytes(made)
        return made

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode a notification, strictly or under a quirk profile.

        Raises:
            DecodeError: truncated, impossible time stamp, or bytes left over.
            UnknownProfileError: `profile` names no profile.
        """
        return cls(*read_bp(_NAME, data, profile))

    def __bytes__(self) -> bytes:
        return write_bp(
            _NAME,
            BpFields(
                self.flags,
                self.cuff_pressure,
                self.unused_diastolic,
                self.unused_mean_arterial,
                self.time_stamp,
                self.pulse_rate,
                self.user_id,
                self.measurement_status,
                self.profile,
            ),
        )
