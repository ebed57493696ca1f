"""What a pairing in progress is doing, step by step, for the pairing page to say it.

Pure: the gateway reports steps (`Step`) and how many measurements the device has sent so far;
`Tracker` keeps the latest for the page, which shows it and reloads itself until the pairing
has finished. No clock here: the page passes the monotonic time a pairing started and the
time it renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Final

from devices.sessions import gatt


class Step(StrEnum):
    """Where a pairing is, in the order a patient lives it."""

    LOOKING = "looking"  # scanning for the device again
    CONNECTING = "connecting"  # opening the radio link
    BONDING = "bonding"  # the bond (passkey) exchange
    READING = "reading"  # the device is sending its stored measurements
    SAVING = "saving"  # the hub stores what arrived
    DONE = "done"  # finished; `outcome` says how


# Measurements the page counts as "readings received" (one notification per stored record).
MEASUREMENT_UUIDS: Final = frozenset(
    {
        gatt.GLUCOSE_MEASUREMENT,
        gatt.BLOOD_PRESSURE_MEASUREMENT,
        gatt.CGM_MEASUREMENT,
        gatt.TEMPERATURE_MEASUREMENT,
        gatt.WEIGHT_MEASUREMENT,
        gatt.PLX_SPOT_CHECK_MEASUREMENT,
    }
)

StepSink = Callable[[Step, int], None]  # (step, measurements received so far)


@dataclass(frozen=True, slots=True)
class Progress:
    """A pairing's state: its step, measurements received, and once done the outcome, the
    number stored, and `error` (a message) when it stopped on bad input or a hub fault."""

    step: Step
    received: int = 0
    outcome: str | None = None
    stored: int = 0
    error: tuple[str, str] | None = None  # (field, reason); field "hub" for a hub fault


class Tracker:
    """The latest `Progress` of one pairing (the page holds one per pairing it started)."""

    def __init__(self, started_s: float) -> None:
        self.started_s = started_s
        self.progress = Progress(Step.CONNECTING)

    def report(self, step: Step, received: int) -> None:
        """A `StepSink`: record the step the gateway reached (never going back to DONE's
        predecessors once done)."""
        if self.progress.step is not Step.DONE:
            self.progress = replace(self.progress, step=step, received=received)

    def finish(self, outcome: str, stored: int) -> None:
        """The pairing ended with `outcome` (a session outcome) after storing `stored`."""
        self.progress = replace(self.progress, step=Step.DONE, outcome=outcome, stored=stored)

    def fail(self, field: str, reason: str) -> None:
        """The pairing stopped before a session outcome: bad input naming `field`, or a hub
        fault (`field` "hub")."""
        self.progress = replace(self.progress, step=Step.DONE, error=(field, reason))

    @property
    def succeeded(self) -> bool:
        """Whether it finished paired (everything fetched, or nothing new to fetch)."""
        return self.progress.outcome in ("complete", "nothing_new")

    @property
    def done(self) -> bool:
        """Whether the pairing has finished (either way)."""
        return self.progress.step is Step.DONE

    def elapsed_s(self, now_s: float) -> int:
        """Whole seconds since the pairing started (monotonic `now_s`)."""
        return max(0, int(now_s - self.started_s))
