"""Blood Pressure Feature 0x2A49 (read): a uint16 bit field.

Spec: SIG GATT XML `org.bluetooth.characteristic.blood_pressure_feature.xml` (bits 0-5) and BLS
1.1 bits 6-8 as transcribed in StanfordSpezi/SpeziBluetooth BloodPressureTests
(docs/device-profiles.md section 2.7). Other bits are RFU and kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import ClassVar, Self

from devices.codecs._reader import Reader, put_uint

__all__ = ["BloodPressureFeature", "BloodPressureFeatureBits"]


class BloodPressureFeatureBits(IntFlag):
    """Supported features."""

    BODY_MOVEMENT_DETECTION = 1 << 0
    CUFF_FIT_DETECTION = 1 << 1
    IRREGULAR_PULSE_DETECTION = 1 << 2
    PULSE_RATE_RANGE_DETECTION = 1 << 3
    MEASUREMENT_POSITION_DETECTION = 1 << 4
    MULTIPLE_BOND = 1 << 5
    E2E_CRC = 1 << 6
    USER_DATA_SERVICE = 1 << 7
    USER_FACING_TIME = 1 << 8


@dataclass(frozen=True, slots=True)
class BloodPressureFeature:
    """Blood Pressure Feature: `features` is the raw uint16."""

    UUID: ClassVar[int] = 0x2A49
    features: int

    def supports(self, bit: BloodPressureFeatureBits) -> bool:
        """Whether the device announces `bit`."""
        return bool(self.features & bit)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly two bytes. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: not exactly two bytes.
        """
        r = Reader("BloodPressureFeature", data)
        features = r.u16("features")
        r.end()
        return cls(features)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.features, 2, "BloodPressureFeature", "features")
        return bytes(out)
