"""Faults a simulated device can be told to show, per device and per scenario (pure).

Each fault is what a real device or radio does wrong, and each is observable through bleak the
way a real stack shows it: a disconnect callback, a `BleakGATTProtocolError`, a missing
indication, odd records. Record-level faults (sequence reset and wrap, duplicates, reordering,
clock jumps) change what the firmware stores; link-level faults change how it talks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from firmware_sims.errors import ScenarioError


@dataclass(frozen=True, slots=True)
class Faults:
    """Switchable faults; the defaults are a well-behaved device."""

    # link level
    disconnect_after_records: int | None = None  # drop the link mid-transfer after N records
    power_off_after_records: int | None = None  # the battery dies mid-session
    refuse_pairing: bool = False  # answers Pairing Not Supported / user said no
    forget_bond: bool = False  # loses its keys at power-on (battery change on some models)
    malformed_every: int | None = None  # every Nth notification is truncated by one byte
    slow_response_s: float = 0.0  # delay before each record and each response
    skip_final_response: bool = False  # the RACP/BP end indication never comes
    racp_busy_first: bool = False  # a stale RACP procedure runs until the first Abort
    cccd_lost_writes: int = 0  # forgets the measurement CCCD at each of the first N RACP writes
    # record level
    sequence_reset_after: int | None = None  # sequence restarts at 0 after N readings
    sequence_start: int = 0  # first sequence number (65530 shows the wrap at 65535)
    duplicate_every: int | None = None  # every Nth record is stored twice
    out_of_order_every: int | None = None  # every Nth record is stored before its predecessor
    clock_jump_after: int | None = None  # the clock jumps after N readings ...
    clock_jump_min: int = 0  # ... by this many minutes

    @classmethod
    def from_mapping(cls, data: Mapping[str, object], *, where: str = "faults") -> Faults:
        """Build from a scenario table, naming any unknown or mistyped key.

        Raises:
            ScenarioError: unknown key, or a value of the wrong type or range.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for key, raw in data.items():
            value = raw
            if key not in known:
                raise ScenarioError(f"{where}.{key}", f"unknown fault (known: {sorted(known)})")
            default = getattr(cls(), key)
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ScenarioError(f"{where}.{key}", "must be true or false")
            elif isinstance(default, float):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ScenarioError(f"{where}.{key}", "must be a number >= 0")
                value = float(value)
            elif key in ("clock_jump_min",):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ScenarioError(f"{where}.{key}", "must be an integer")
            elif key == "sequence_start":
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 <= value <= 0xFFFF
                ):
                    raise ScenarioError(f"{where}.{key}", "must be an integer 0..65535")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ScenarioError(f"{where}.{key}", "must be an integer >= 1")
            values[key] = value
        return cls(**values)  # type: ignore[arg-type]

    def corrupt(self, index: int) -> bool:
        """Whether the notification with this 1-based index goes out malformed."""
        return self.malformed_every is not None and index % self.malformed_every == 0


def next_sequence(previous: int | None, readings_taken: int, faults: Faults) -> int:
    """The sequence number of the next reading: +1 modulo 2^16 (it is a u16 and wraps, PROFILES
    quirk 17), from `faults.sequence_start`, back to 0 after a battery-change reset."""
    if previous is None:
        return faults.sequence_start & 0xFFFF
    if faults.sequence_reset_after is not None and readings_taken == faults.sequence_reset_after:
        return 0
    return (previous + 1) & 0xFFFF
