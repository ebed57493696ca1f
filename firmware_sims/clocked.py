"""A peripheral with its own clock and the Current Time Service (CTS 1.1, 0x1805).

Current Time 0x2A2B is readable and notifiable; a write sets the clock (docs/device-profiles.md
quirk 7: Omron-like cuffs are set by the host right after connecting). Real time comes from the
`now` callable passed in, so tests and scenarios run the device at any speed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bumble.att import ATT_Error, AttributeValue
from bumble.gatt import Characteristic, Service

from devices.codecs import CurrentTime, DecodeError
from firmware_sims.device_clock import DeviceClock
from firmware_sims.peripheral import READABLE, SimulatedPeripheral

Now = Callable[[], datetime]
CTS_DATA_FIELD_IGNORED = 0x80  # CTS 1.1 3.1.2.1, application error


def utc_now() -> datetime:
    """The real clock (the default `now` outside tests)."""
    return datetime.now(UTC)


class ClockedPeripheral(SimulatedPeripheral):
    """Set `self.now` and `self.clock` before calling `SimulatedPeripheral.__init__`."""

    now: Now
    clock: DeviceClock

    def current_time_service(self) -> Service:
        """CTS with Current Time (read, notify, write)."""
        props = Characteristic.Properties
        self.current_time_char: Characteristic[bytes] = Characteristic(
            "2A2B",
            props.READ | props.NOTIFY | props.WRITE,
            READABLE | self.protected_write(),
            AttributeValue(read=self._read_current_time, write=self._write_current_time),
        )
        return Service("1805", [self.current_time_char])

    def device_time(self) -> datetime:
        """What the device's clock shows now."""
        return self.clock.now(self.now())

    def battery_change(self) -> None:
        """The battery was swapped: the clock restarts at the firmware's default date
        (2000-01-01 00:00) until a host or the user sets it."""
        self.clock.reset(self.now())

    def _read_current_time(self, _connection: object) -> bytes:
        return bytes(CurrentTime.build(self.device_time()))

    def _write_current_time(self, _connection: object, value: bytes) -> None:
        try:
            written = CurrentTime.from_bytes(value)
        except DecodeError as exc:
            raise ATT_Error(error_code=CTS_DATA_FIELD_IGNORED) from exc
        if written.date_time is not None:
            self.clock.set(self.now(), written.date_time)
