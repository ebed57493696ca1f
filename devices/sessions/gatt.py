"""GATT identifiers the sessions use, and what the adapter discovered on a device.

UUIDs are the full 128-bit lowercase strings bleak reports (Bluetooth Base UUID,
Core spec Vol 3 Part B 2.5.1), so the adapter never translates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final


def uuid16(short: int) -> str:
    """The 128-bit string of a 16-bit SIG UUID."""
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


GLUCOSE_SERVICE: Final = uuid16(0x1808)
BLOOD_PRESSURE_SERVICE: Final = uuid16(0x1810)
GLUCOSE_MEASUREMENT: Final = uuid16(0x2A18)
GLUCOSE_MEASUREMENT_CONTEXT: Final = uuid16(0x2A34)
RECORD_ACCESS_CONTROL_POINT: Final = uuid16(0x2A52)
BLOOD_PRESSURE_MEASUREMENT: Final = uuid16(0x2A35)
CURRENT_TIME: Final = uuid16(0x2A2B)
DATE_TIME: Final = uuid16(0x2A08)
MANUFACTURER_NAME: Final = uuid16(0x2A29)
MODEL_NUMBER: Final = uuid16(0x2A24)
SERIAL_NUMBER: Final = uuid16(0x2A25)
FIRMWARE_REVISION: Final = uuid16(0x2A26)
SYSTEM_ID: Final = uuid16(0x2A23)
# Wearables and episodic vitals.
HEART_RATE_SERVICE: Final = uuid16(0x180D)
HEART_RATE_MEASUREMENT: Final = uuid16(0x2A37)
CGM_SERVICE: Final = uuid16(0x181F)
CGM_MEASUREMENT: Final = uuid16(0x2AA7)
CGM_FEATURE: Final = uuid16(0x2AA8)
CGM_SESSION_START_TIME: Final = uuid16(0x2AAA)
HEALTH_THERMOMETER_SERVICE: Final = uuid16(0x1809)
TEMPERATURE_MEASUREMENT: Final = uuid16(0x2A1C)
WEIGHT_SCALE_SERVICE: Final = uuid16(0x181D)
WEIGHT_MEASUREMENT: Final = uuid16(0x2A9D)
PULSE_OXIMETER_SERVICE: Final = uuid16(0x1822)
PLX_SPOT_CHECK_MEASUREMENT: Final = uuid16(0x2A5E)
PLX_CONTINUOUS_MEASUREMENT: Final = uuid16(0x2A5F)

# Device Information reads, in the order the session makes them.
DIS_CHARACTERISTICS: Final = (
    MANUFACTURER_NAME,
    MODEL_NUMBER,
    SERIAL_NUMBER,
    FIRMWARE_REVISION,
    SYSTEM_ID,
)


@dataclass(frozen=True, slots=True)
class GattInventory:
    """Characteristics found by service discovery: uuid -> properties ("read", "notify", ...)."""

    characteristics: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def has(self, uuid: str) -> bool:
        """True if the device exposes the characteristic."""
        return uuid in self.characteristics

    def can(self, uuid: str, prop: str) -> bool:
        """True if the characteristic exists and has property `prop` ("write", "read", ...)."""
        return prop in self.characteristics.get(uuid, frozenset())
