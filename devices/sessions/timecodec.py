"""Reading and setting a device clock through Current Time 0x2A2B or Date Time 0x2A08.

Current Time is Date Time + Day of Week + Fractions256 + Adjust Reason (docs/device-profiles.md
2.8). Some CTS servers send 9 bytes (quirk 8); the strict codec rejects them, so the session
quarantines the value and treats the clock as unreadable (flag `clock_not_read`) rather than guess.
When the gateway sets a clock it writes Adjust Reason "manual time update".
"""

from __future__ import annotations

from datetime import datetime

from devices.codecs.current_time import AdjustReason, CurrentTime
from devices.codecs.date_time import DateTime
from devices.sessions import gatt


def decode_device_clock(uuid: str, data: bytes) -> datetime | None:
    """The device's clock as a naive datetime; None when the device says it is unknown.

    Raises:
        DecodeError: the payload is not a Current Time / Date Time value.
    """
    if uuid == gatt.CURRENT_TIME:
        return CurrentTime.from_bytes(data).date_time
    return DateTime.from_bytes(data).value


def encode_device_clock(uuid: str, local: datetime) -> bytes:
    """The bytes that set a device clock (naive local time) through `uuid`."""
    if uuid == gatt.CURRENT_TIME:
        return bytes(CurrentTime.build(local, adjust_reason=AdjustReason.MANUAL_TIME_UPDATE))
    return bytes(DateTime.from_datetime(local.replace(microsecond=0)))
