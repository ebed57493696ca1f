"""Battery Level 0x2A19 (Battery Service, read/notify): uint8 percent, 0-100.

Spec: SIG GATT XML `org.bluetooth.characteristic.battery_level.xml` (101-255 are prohibited:
a `DecodeError` in strict mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from devices.codecs._reader import Reader
from devices.codecs.errors import EncodeError

__all__ = ["BatteryLevel"]


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """The battery charge in percent."""

    UUID: ClassVar[int] = 0x2A19
    level_pct: int

    @classmethod
    def from_bytes(
        cls, data: bytes | bytearray | memoryview, *, profile: str | None = None
    ) -> Self:
        """Decode exactly one byte. `profile` is accepted for a uniform signature.

        Raises:
            DecodeError: not exactly one byte, or above 100.
        """
        r = Reader("BatteryLevel", data)
        level = r.u8("level_pct")
        if level > 100:
            raise r.fail("level_pct", f"{level} is above 100", 0)
        r.end()
        return cls(level)

    def __bytes__(self) -> bytes:
        if not 0 <= self.level_pct <= 100:
            raise EncodeError("BatteryLevel", "level_pct", f"{self.level_pct} outside 0-100")
        return bytes((self.level_pct,))
