"""The demo's accelerated clock (pure: the wall time comes in as an argument).

Two weeks of a patient's life play in a couple of minutes. Simulated time starts at
`sim_start`, stands still there until the clock is started (while the hubs are enrolled and the
devices paired, on the patient's first day home), then runs `speed` times faster than the wall
clock. Once it has caught up with the wall clock it stays on it: simulated time is never ahead
of the real "now", so every reading is in the past for the servers that check it (ingest
refuses readings from the future) and the story ends at today.

Everything that lives in the patient's home shares this clock (the simulated meters and cuffs,
the hub's device service), and so does the rules engine while the story plays, so that a
reading is judged at the simulated moment it was taken. The servers keep the wall clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class DemoClock:
    """Simulated time as a function of the wall clock (see the module docstring).

    Attributes:
        sim_start: the simulated moment the story starts (aware UTC).
        speed: simulated seconds per wall-clock second (> 1).
        started_at: the wall-clock moment the clock started; None while it stands still.
    """

    sim_start: datetime
    speed: float
    started_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.sim_start.tzinfo is None or (
            self.started_at is not None and self.started_at.tzinfo is None
        ):
            raise ValueError("sim_start and started_at must be aware UTC datetimes")
        if not self.speed > 1.0:
            raise ValueError(f"speed must be above 1 (simulated s per wall s), got {self.speed}")

    def started(self, wall: datetime) -> DemoClock:
        """This clock, running from the wall-clock moment `wall`."""
        return replace(self, started_at=wall)

    def at(self, wall: datetime) -> datetime:
        """Simulated time at the wall-clock moment `wall` (never after `wall`)."""
        if self.started_at is None:
            return min(self.sim_start, wall)
        elapsed = max(timedelta(0), wall - self.started_at)
        return min(self.sim_start + elapsed * self.speed, wall)

    def caught_up_at(self) -> datetime | None:
        """The wall-clock moment simulated time reaches the wall clock (None: not started)."""
        if self.started_at is None:
            return None
        behind = self.started_at - self.sim_start
        if behind <= timedelta(0):
            return self.started_at
        return self.started_at + behind / (self.speed - 1.0)

    def running_s(self) -> float:
        """Wall-clock seconds the accelerated part takes (0 when nothing is behind)."""
        end = self.caught_up_at()
        return (
            0.0
            if end is None or self.started_at is None
            else (end - self.started_at).total_seconds()
        )
