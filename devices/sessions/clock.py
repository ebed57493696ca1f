"""Clock provenance: how far a device clock is from the gateway's, and honest measured_at.

At every session the gateway reads the device clock (Current Time 0x2A2B or Date Time 0x2A08)
and notes its own UTC clock at that moment, as the HL7 PHD implementation guide does with its
coincident time stamp. `offset_s` = device clock (naive, the device's own frame) minus gateway
UTC. A record stamped by that clock, minus the offset, is its UTC time, whatever the device
believes its time zone is (the clock-difference correction xDrip+ applies, docs/device-profiles.md
quirk 4). The stamping clock is the one behind Base Time, so Base Time is what is corrected; Time
Offset (Contour-like meters put the local UTC offset there, quirk 1) stays raw in the reading. Past
records were stamped by a clock that may have drifted since; the offset measured now is the best
estimate there is, and both raw time and offset are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

EARLIEST_PLAUSIBLE: Final = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_SLACK: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """The device clock against the gateway's, measured once per session.

    Attributes:
        offset_s: device clock minus gateway UTC, seconds (includes the device's time zone).
        measured: False when the device has no readable clock and the offset is assumed to be
            the gateway's own UTC offset.
    """

    offset_s: float
    measured: bool


def estimate(
    device_now: datetime | None, gateway_utc: datetime, local_utc_offset_min: int
) -> ClockEstimate:
    """Estimate the device clock offset from one coincident pair of readings.

    `device_now` is the device clock as read (naive), None when it could not be read; then
    the device is assumed to run on the gateway's local time (`local_utc_offset_min`).
    """
    if device_now is None:
        return ClockEstimate(float(local_utc_offset_min * 60), measured=False)
    gateway_naive = gateway_utc.astimezone(UTC).replace(tzinfo=None)
    return ClockEstimate((device_now - gateway_naive).total_seconds(), measured=True)


def drift_s(clock: ClockEstimate, local_utc_offset_min: int) -> float:
    """How far the device clock is from the gateway's local time (its time zone removed)."""
    return clock.offset_s - local_utc_offset_min * 60


def should_set_clock(clock: ClockEstimate, local_utc_offset_min: int, threshold_s: float) -> bool:
    """True when a readable device clock is off by more than `threshold_s`."""
    return clock.measured and abs(drift_s(clock, local_utc_offset_min)) > threshold_s


def corrected_utc(device_time: datetime, clock: ClockEstimate) -> datetime:
    """UTC time of a record stamped `device_time` (naive, device frame) by a clock at `clock`.

    Raises:
        OverflowError: the correction leaves the representable range (a wildly wrong clock).
    """
    return (device_time - timedelta(seconds=clock.offset_s)).replace(tzinfo=UTC)


def plausible(measured_at: datetime, received_at: datetime) -> bool:
    """True when a corrected time lies between 2000 and a day after the gateway received it."""
    return EARLIEST_PLAUSIBLE <= measured_at <= received_at + FUTURE_SLACK


def local_time(gateway_utc: datetime, local_utc_offset_min: int) -> datetime:
    """The gateway's local wall time (naive), what a device clock should be set to."""
    return (gateway_utc.astimezone(UTC) + timedelta(minutes=local_utc_offset_min)).replace(
        tzinfo=None
    )
