"""Drive a sans-IO session by hand: answer its commands from literal byte tables.

This is not a device simulator: it answers each command with the inputs a test lists for it,
so every byte a session sees is written in the test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from devices.sessions import (
    BaseSession,
    Disconnect,
    GattInventory,
    Input,
    Instant,
    Notified,
    Output,
    Pair,
    PairDone,
    Read,
    ReadDone,
    RecordsReady,
    SessionEnded,
    Subscribe,
    SubscribeDone,
    Write,
    WriteDone,
    gatt,
)

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

DIS = {
    gatt.MANUFACTURER_NAME: b"Acme",
    gatt.MODEL_NUMBER: b"GM-1",
    gatt.SERIAL_NUMBER: b"MTR-0001",
}
# 2026-11-27 08:00:30, Friday (5), fractions 0, adjust reason 0: the meter is 30 s fast.
CTS_30S_FAST = bytes.fromhex("EA070B1B08001E050000")

METER_CHARS: dict[str, frozenset[str]] = {
    **{u: frozenset({"read"}) for u in DIS},
    gatt.CURRENT_TIME: frozenset({"read", "notify", "write"}),
    gatt.GLUCOSE_MEASUREMENT: frozenset({"notify"}),
    gatt.GLUCOSE_MEASUREMENT_CONTEXT: frozenset({"notify"}),
    gatt.RECORD_ACCESS_CONTROL_POINT: frozenset({"write", "indicate"}),
}
CUFF_CHARS: dict[str, frozenset[str]] = {
    **{u: frozenset({"read"}) for u in DIS},
    gatt.CURRENT_TIME: frozenset({"read"}),
    gatt.BLOOD_PRESSURE_MEASUREMENT: frozenset({"indicate"}),
}


def inventory(chars: Mapping[str, frozenset[str]], *, without: Sequence[str] = ()) -> GattInventory:
    return GattInventory({u: p for u, p in chars.items() if u not in without})


@dataclass
class Script:
    """Answers: reads from `reads`, RACP writes from `racp` (request bytes -> notifications)."""

    reads: dict[str, bytes] = field(
        default_factory=lambda: {**DIS, gatt.CURRENT_TIME: CTS_30S_FAST}
    )
    racp: dict[bytes, list[Input]] = field(default_factory=dict)
    pair_ok: bool = True
    after_subscribe: list[Input] = field(default_factory=list)
    on_command: Callable[[Output], list[Input] | None] | None = None


@dataclass
class Run:
    commands: list[Output] = field(default_factory=list)
    ready: list[RecordsReady] = field(default_factory=list)
    ended: SessionEnded | None = None
    events: list[Output] = field(default_factory=list)

    @property
    def readings(self) -> list:  # type: ignore[type-arg]
        return [r for ready in self.ready for r in ready.readings]

    @property
    def writes(self) -> list[bytes]:
        return [c.data for c in self.commands if isinstance(c, Write)]


def drive(session: BaseSession, script: Script, *, step_s: float = 0.01) -> Run:
    """Run a session to its end against `script`; time advances `step_s` per input."""
    run = Run()
    t = 0.0

    def at() -> Instant:
        return Instant(t, NOW + timedelta(seconds=t))

    queue: list[Output] = list(session.start(at()))
    subscribed = 0
    while True:
        if not queue:
            if session.ended or session.deadline_s is None:
                break
            t = max(t, session.deadline_s)
            queue.extend(session.tick(at()))
            continue
        out = queue.pop(0)
        run.events.append(out)
        if isinstance(out, RecordsReady):
            run.ready.append(out)
            continue
        if isinstance(out, SessionEnded):
            run.ended = out
            continue
        if isinstance(out, Pair | Read | Subscribe | Write | Disconnect):
            run.commands.append(out)
            t = max(t, out.not_before_s)
        inputs: list[Input] = []
        custom = script.on_command(out) if script.on_command else None
        if custom is not None:
            inputs = custom
        elif isinstance(out, Pair):
            inputs = [PairDone(script.pair_ok, "" if script.pair_ok else "passkey rejected")]
        elif isinstance(out, Read):
            inputs = [ReadDone(out.uuid, script.reads[out.uuid])]
        elif isinstance(out, Subscribe):
            inputs = [SubscribeDone(out.uuid)]
            subscribed += 1
            if subscribed == len([u for u in session.SUBSCRIPTIONS if session.inventory.has(u)]):
                inputs += script.after_subscribe
        elif isinstance(out, Write):
            inputs = [WriteDone(out.uuid)]
            inputs += (
                script.racp.get(out.data, [])
                if out.uuid == gatt.RECORD_ACCESS_CONTROL_POINT
                else []
            )
        for event in inputs:
            t += step_s
            queue.extend(session.feed(event, at()))
    return run


def racp_success() -> Notified:
    return Notified(gatt.RECORD_ACCESS_CONTROL_POINT, bytes.fromhex("06000101"))


def racp_code(code: int) -> Notified:
    return Notified(gatt.RECORD_ACCESS_CONTROL_POINT, bytes((0x06, 0x00, 0x01, code)))
