"""A device's own real-time clock: set once, drifting, jumping, reset by a battery change (pure).

Meters and cuffs keep naive local (or, for Contour-like meters, UTC) time from a cheap crystal:
typical drift is tens of ppm (a 32.768 kHz watch crystal is +-20 ppm at 25 C), clocks are set
by the user or by a Current Time write, and a battery change resets them to a firmware default.
Real time is passed in (`real_utc`); nothing here reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from firmware_sims.errors import FirmwareSimsError

FACTORY_DEFAULT = datetime(2000, 1, 1, 0, 0, 0)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise FirmwareSimsError(f"{name} must be an aware UTC datetime")
    return moment.astimezone(UTC)


@dataclass
class DeviceClock:
    """Naive device time as a function of real UTC time.

    `reading_at_set` is what the display showed at `set_at_utc`; afterwards the clock runs at
    (1 + drift_ppm * 1e-6) times real speed.
    """

    set_at_utc: datetime
    reading_at_set: datetime
    drift_ppm: float = 0.0

    @classmethod
    def set_to_local(
        cls,
        real_utc: datetime,
        *,
        utc_offset_min: int,
        error_s: float = 0.0,
        drift_ppm: float = 0.0,
    ) -> DeviceClock:
        """A clock the user set to local time (UTC + offset), `error_s` off.

        Raises:
            FirmwareSimsError: `real_utc` is naive.
        """
        real = _utc(real_utc, "real_utc")
        shown = real.replace(tzinfo=None) + timedelta(minutes=utc_offset_min, seconds=error_s)
        return cls(real, shown, drift_ppm)

    def now(self, real_utc: datetime) -> datetime:
        """What the clock shows at `real_utc` (whole seconds, as Date Time carries them).

        Raises:
            FirmwareSimsError: `real_utc` is naive.
        """
        elapsed_s = (_utc(real_utc, "real_utc") - self.set_at_utc).total_seconds()
        shown = self.reading_at_set + timedelta(seconds=elapsed_s * (1 + self.drift_ppm * 1e-6))
        return shown.replace(microsecond=0)

    def set(self, real_utc: datetime, shown: datetime) -> None:
        """Set the clock (a Current Time write, or the user's menu).

        Raises:
            FirmwareSimsError: `real_utc` is naive or `shown` is aware.
        """
        if shown.tzinfo is not None:
            raise FirmwareSimsError("a device clock shows naive time")
        self.set_at_utc = _utc(real_utc, "real_utc")
        self.reading_at_set = shown

    def jump(self, real_utc: datetime, delta: timedelta) -> None:
        """The clock jumps by `delta` (a fault, or a DST change on clocks that follow DST)."""
        self.set(real_utc, self.now(real_utc) + delta)

    def reset(self, real_utc: datetime) -> None:
        """Battery change: back to the firmware's default date."""
        self.set(real_utc, FACTORY_DEFAULT)
