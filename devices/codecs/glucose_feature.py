"""Glucose Feature 0x2A51 (read): a uint16 bit field.

Spec: SIG GATT XML `org.bluetooth.characteristic.glucose_feature.xml` (docs/device-profiles.md
section 2.3). Bits 11-15 are RFU and kept as sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import ClassVar, Self

from devices.codecs._reader import Reader, put_uint

__all__ = ["GlucoseFeature", "GlucoseFeatureBits"]


class GlucoseFeatureBits(IntFlag):
    """Supported features; RFU bits 11-15 are kept by `GlucoseFeature.features` as an int."""

    LOW_BATTERY_DETECTION = 1 << 0
    SENSOR_MALFUNCTION_DETECTION = 1 << 1
    SENSOR_SAMPLE_SIZE = 1 << 2
    SENSOR_STRIP_INSERTION_ERROR_DETECTION = 1 << 3
    SENSOR_STRIP_TYPE_ERROR_DETECTION = 1 << 4
    SENSOR_RESULT_HIGH_LOW_DETECTION = 1 << 5
    SENSOR_TEMPERATURE_HIGH_LOW_DETECTION = 1 << 6
    SENSOR_READ_INTERRUPT_DETECTION = 1 << 7
    GENERAL_DEVICE_FAULT = 1 << 8
    TIME_FAULT = 1 << 9
    MULTIPLE_BOND = 1 << 10


@dataclass(frozen=True, slots=True)
class GlucoseFeature:
    """Glucose Feature: `features` is the raw uint16."""

    UUID: ClassVar[int] = 0x2A51
    features: int

    def supports(self, bit: GlucoseFeatureBits) -> bool:
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
        r = Reader("GlucoseFeature", data)
        features = r.u16("features")
        r.end()
        return cls(features)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.features, 2, "GlucoseFeature", "features")
        return bytes(out)
