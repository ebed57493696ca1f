"""CGM Feature 0x2AA8 (Continuous Glucose Monitoring Service, read).

Spec: CGMS 1.0.1 3.2 / SIG GATT XML `org.bluetooth.characteristic.cgm_feature.xml`. CGM Feature
uint24 (bit 12: E2E-CRC supported, among calibration, alerts, sensor-type and other bits),
CGM Type-Sample Location uint8 (low nibble Type, high nibble Sample Location, as in GLS), then
E2E-CRC uint16: CRC-16/MCRF4XX over the first four octets when bit 12 is set, else 0xFFFF
(CGMS 1.0.1 3.2.3). A mismatch is a `DecodeError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader, put_uint
from devices.codecs.cgm_measurement import crc16_mcrf4xx

__all__ = ["E2E_CRC_SUPPORTED", "CgmFeature"]

_NAME = "CgmFeature"
E2E_CRC_SUPPORTED = 1 << 12
NO_CRC = 0xFFFF


@dataclass(frozen=True, slots=True)
class CgmFeature:
    """What the sensor supports; `e2e_crc` is the CRC as sent."""

    UUID: ClassVar[int] = 0x2AA8
    features: int
    type_sample_location: int
    e2e_crc: int

    @property
    def e2e_crc_supported(self) -> bool:
        """True when every CGM record (and this value) carries an E2E-CRC."""
        return bool(self.features & E2E_CRC_SUPPORTED)

    @classmethod
    def build(cls, features: int, type_sample_location: int) -> Self:
        """A value with its E2E-CRC filled in as the spec asks."""
        body = features.to_bytes(3, "little") + bytes((type_sample_location,))
        crc = crc16_mcrf4xx(body) if features & E2E_CRC_SUPPORTED else NO_CRC
        return cls(features, type_sample_location, crc)

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: truncated, bytes left over, or a wrong E2E-CRC (or a CRC other than
                0xFFFF when E2E-CRC is not supported).
        """
        r = Reader(_NAME, data)
        features = r.uint(3, "features")
        location = r.u8("type_sample_location")
        at = r.offset
        crc = r.u16("e2e_crc")
        r.end()
        expected = crc16_mcrf4xx(r.data[:at]) if features & E2E_CRC_SUPPORTED else NO_CRC
        if crc != expected:
            raise r.fail("e2e_crc", f"0x{crc:04X} != expected 0x{expected:04X}", at)
        return cls(features, location, crc)

    def __bytes__(self) -> bytes:
        out = bytearray()
        put_uint(out, self.features, 3, _NAME, "features")
        put_uint(out, self.type_sample_location, 1, _NAME, "type_sample_location")
        put_uint(out, self.e2e_crc, 2, _NAME, "e2e_crc")
        return bytes(out)
