"""The part every record-transfer session shares: bond, identify, read the clock, subscribe.

Order (docs/device-profiles.md quirks 9 and 12): bond first, because meters such as the Accu-Chek
Guide refuse the CCCD writes of an unbonded client; then read Device Information (the device's
identity is its serial or system id, never its BLE address); then read the device clock and set it
when it is off by more than the threshold; then enable notifications and indications. Each GATT
operation waits for the previous one to finish and for `pace_s` after it (Tidepool waits 500 ms
between RACP operations to avoid "GATT operation already in progress", quirk 20). Every wait has a
deadline; `tick()` past it ends the session with `Outcome.TIMEOUT`.

Subclasses implement `_begin_transfer` and `_on_transfer_input`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, auto

from devices.codecs.errors import DecodeError
from devices.reading import DeviceInfo, device_id_for
from devices.sessions import clock as clk
from devices.sessions import gatt
from devices.sessions.events import (
    ClockRead,
    Command,
    DeviceCursor,
    Disconnect,
    Disconnected,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    Pair,
    PairDone,
    QuarantinedPacket,
    Read,
    ReadDone,
    RecordsReady,
    SessionEnded,
    Subscribe,
    SubscribeDone,
    Write,
    WriteDone,
)
from devices.sessions.timecodec import decode_device_clock, encode_device_clock

_AUTH_WORDS = ("authentication", "encryption", "authoriz", "not bonded", "insufficient")


@dataclass(frozen=True, slots=True)
class SessionParams:
    """What a session needs to know before it starts (all times in seconds)."""

    patient_id: str
    gateway_id: str
    expected_device_id: str | None = None  # None while pairing: identity is learnt
    cursor: DeviceCursor | None = None
    local_utc_offset_min: int = 0
    clock_set_threshold_s: float = 120.0
    require_bond: bool = True
    pace_s: float = 0.0
    operation_timeout_s: float = 30.0
    silence_timeout_s: float = 10.0
    profile: str | None = None  # codec quirk profile chosen by the registry
    # A cuff with user slots: (user index, patient) pairs. Empty: every reading is
    # `patient_id`'s; otherwise a reading of a user not listed here is quarantined.
    patients_by_user: tuple[tuple[int, str], ...] = ()

    def patient_for_user(self, user_id: int | None) -> str | None:
        """The patient a reading of device user `user_id` belongs to (None: nobody's). A
        reading without a user index is the device's patient's."""
        if not self.patients_by_user or user_id is None:
            return self.patient_id
        return dict(self.patients_by_user).get(user_id)

    stream_s: float | None = None  # streams: end (complete) after this long; None = link's life


class _Phase(Enum):
    IDLE = auto()
    PAIRING = auto()
    IDENTIFYING = auto()
    CLOCK = auto()
    SETTING_CLOCK = auto()
    SUBSCRIBING = auto()
    TRANSFER = auto()
    ENDED = auto()


def is_auth_failure(reason: str) -> bool:
    """True when an ATT failure means the link is not (or no longer) bonded."""
    lowered = reason.lower()
    return any(word in lowered for word in _AUTH_WORDS)


class BaseSession(ABC):
    """Shared procedure; see the module docstring."""

    SUBSCRIPTIONS: tuple[str, ...] = ()

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        self.params = params
        self.inventory = inventory
        self.device: DeviceInfo | None = None
        self.clock = clk.ClockEstimate(float(params.local_utc_offset_min * 60), measured=False)
        self.stats: dict[str, int] = {}
        self._phase = _Phase.IDLE
        self._deadline_s: float | None = None
        self._last_op_s = 0.0
        self._dis: dict[str, bytes] = {}
        self._dis_todo: list[str] = []
        self._subs_todo: list[str] = []
        self.quarantined: list[QuarantinedPacket] = []

    # ----------------------------------------------------------------------------- public

    @property
    def deadline_s(self) -> float | None:
        """Monotonic time at which `tick` must be called if nothing else arrives."""
        return self._deadline_s

    @property
    def transferring(self) -> bool:
        """True once every subscription is in place and the record transfer runs."""
        return self._phase is _Phase.TRANSFER

    @property
    def ended(self) -> bool:
        """True once `SessionEnded` was emitted."""
        return self._phase is _Phase.ENDED

    def start(self, at: Instant) -> list[Output]:
        """Begin the procedure; returns the first command."""
        if self.params.require_bond:
            self._phase = _Phase.PAIRING
            return [self._command(Pair(), at)]
        return self._identify(at)

    def feed(self, event: Input, at: Instant) -> list[Output]:
        """Feed what the adapter saw; returns the commands to run and the events concluded."""
        if self._phase is _Phase.ENDED:
            return []
        if isinstance(event, Disconnected):
            return self._end(
                Outcome.DISCONNECTED, event.reason or "link lost", at, disconnect=False
            )
        if isinstance(event, OperationFailed) and is_auth_failure(event.reason):
            return self._end(Outcome.NOT_BONDED, f"{event.uuid}: {event.reason}", at)
        self._last_op_s = at.monotonic_s
        if self._phase is _Phase.PAIRING:
            return self._on_pair(event, at)
        if self._phase is _Phase.IDENTIFYING:
            return self._on_identify(event, at)
        if self._phase in (_Phase.CLOCK, _Phase.SETTING_CLOCK):
            return self._on_clock(event, at)
        if self._phase is _Phase.SUBSCRIBING:
            return self._on_subscribe(event, at)
        if self._phase is _Phase.TRANSFER:
            return self._on_transfer_input(event, at)
        return []

    def tick(self, at: Instant) -> list[Output]:
        """Check the deadline; past it, the session ends with `Outcome.TIMEOUT`."""
        if self._deadline_s is not None and at.monotonic_s >= self._deadline_s:
            return self._end(Outcome.TIMEOUT, f"no answer while {self._phase.name.lower()}", at)
        return []

    # ----------------------------------------------------------------------------- helpers

    def _command(self, command: Command, at: Instant, *, timeout_s: float | None = None) -> Command:
        not_before = max(at.monotonic_s, self._last_op_s + self.params.pace_s)
        timeout = self.params.operation_timeout_s if timeout_s is None else timeout_s
        self._deadline_s = not_before + timeout
        match command:
            case Pair():
                return Pair(not_before)
            case Read(uuid=uuid):
                return Read(uuid, not_before)
            case Subscribe(uuid=uuid):
                return Subscribe(uuid, not_before)
            case Write(uuid=uuid, data=data):
                return Write(uuid, data, not_before)
            case Disconnect():
                return Disconnect(not_before)
        raise AssertionError(command)  # pragma: no cover - the match is exhaustive

    def _count(self, name: str, by: int = 1) -> None:
        self.stats[name] = self.stats.get(name, 0) + by

    def _quarantine(self, uuid: str, raw: bytes, reason: str, at: Instant) -> None:
        self._count("quarantined")
        self.quarantined.append(QuarantinedPacket(uuid, bytes(raw), reason, at.utc))

    def _end(
        self, outcome: Outcome, detail: str, at: Instant, *, disconnect: bool = True
    ) -> list[Output]:
        self._phase = _Phase.ENDED
        self._deadline_s = None
        out: list[Output] = []
        if self.quarantined:
            # Never drop silently: even a failed session stores what it had to quarantine.
            out.append(RecordsReady((), None, tuple(self.quarantined)))
            self.quarantined = []
        out.append(SessionEnded(outcome, detail, self.device, dict(self.stats)))
        if disconnect:
            out.append(Disconnect(at.monotonic_s))
        return out

    # ----------------------------------------------------------------------------- phases

    def _on_pair(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, PairDone):
            if not event.ok:
                # A paired device that no longer bonds has lost its keys (battery change,
                # reset): the patient must pair it again. A new one simply refused.
                known = self.params.expected_device_id is not None
                outcome = Outcome.NOT_BONDED if known else Outcome.PAIRING_REFUSED
                return self._end(outcome, event.reason or "pairing refused", at)
            return self._identify(at)
        return []

    def _identify(self, at: Instant) -> list[Output]:
        self._phase = _Phase.IDENTIFYING
        self._dis_todo = [u for u in gatt.DIS_CHARACTERISTICS if self.inventory.can(u, "read")]
        return self._next_dis(at)

    def _next_dis(self, at: Instant) -> list[Output]:
        if self._dis_todo:
            return [self._command(Read(self._dis_todo[0]), at)]
        return self._identified(at)

    def _on_identify(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, ReadDone | OperationFailed) and self._dis_todo:
            if event.uuid != self._dis_todo[0]:
                return []
            self._dis_todo.pop(0)
            if isinstance(event, ReadDone):
                self._dis[event.uuid] = event.data
            return self._next_dis(at)
        return []

    def _text(self, uuid: str) -> str | None:
        raw = self._dis.get(uuid)
        if not raw:
            return None
        # DIS strings are UTF-8 (GATT Specification Supplement 3.x); some devices pad with NUL.
        text = raw.decode("utf-8", "replace").replace("\x00", "").strip()
        return text[:64] or None

    def _identified(self, at: Instant) -> list[Output]:
        manufacturer = self._text(gatt.MANUFACTURER_NAME)
        model = self._text(gatt.MODEL_NUMBER)
        serial = self._text(gatt.SERIAL_NUMBER)
        system_id = self._dis.get(gatt.SYSTEM_ID)
        try:
            device_id = device_id_for(
                manufacturer=manufacturer, model=model, serial=serial, system_id=system_id or None
            )
        except ValueError:
            return self._end(
                Outcome.UNSUPPORTED, "no serial number or system id to identify it", at
            )
        self.device = DeviceInfo(
            device_id, manufacturer, model, serial, self._text(gatt.FIRMWARE_REVISION)
        )
        expected = self.params.expected_device_id
        if expected is not None and device_id != expected:
            return self._end(
                Outcome.IDENTITY_MISMATCH, f"found {device_id}, expected {expected}", at
            )
        return self._read_clock(at)

    def _clock_uuid(self) -> str | None:
        for uuid in (gatt.CURRENT_TIME, gatt.DATE_TIME):
            if self.inventory.can(uuid, "read"):
                return uuid
        return None

    def _read_clock(self, at: Instant) -> list[Output]:
        uuid = self._clock_uuid()
        if uuid is None:
            self._count("clock_unreadable")
            return self._subscribe(at)
        self._phase = _Phase.CLOCK
        return [self._command(Read(uuid), at)]

    def _on_clock(self, event: Input, at: Instant) -> list[Output]:
        if self._phase is _Phase.SETTING_CLOCK:
            if isinstance(event, WriteDone | OperationFailed):
                if isinstance(event, OperationFailed):
                    self._count("clock_set_failed")
                return self._subscribe(at)
            return []
        if isinstance(event, OperationFailed):
            self._count("clock_unreadable")
            return self._subscribe(at)
        if not isinstance(event, ReadDone):
            return []
        try:
            device_now = decode_device_clock(event.uuid, event.data)
        except DecodeError as exc:
            self._quarantine(event.uuid, event.data, str(exc), at)
            device_now = None
        self.clock = clk.estimate(device_now, at.utc, self.params.local_utc_offset_min)
        offset_min = self.params.local_utc_offset_min
        will_set = clk.should_set_clock(
            self.clock, offset_min, self.params.clock_set_threshold_s
        ) and self.inventory.can(event.uuid, "write")
        out: list[Output] = []
        if device_now is not None:
            out.append(ClockRead(device_now.isoformat(), at.utc, self.clock.offset_s, will_set))
        if will_set:
            self._phase = _Phase.SETTING_CLOCK
            self._count("clock_set")
            data = encode_device_clock(event.uuid, clk.local_time(at.utc, offset_min))
            return [*out, self._command(Write(event.uuid, data), at)]
        return [*out, *self._subscribe(at)]

    def _subscribe(self, at: Instant) -> list[Output]:
        self._phase = _Phase.SUBSCRIBING
        self._subs_todo = [u for u in self.SUBSCRIPTIONS if self.inventory.has(u)]
        missing = self._required_missing()
        if missing:
            return self._end(Outcome.UNSUPPORTED, f"the device lacks {', '.join(missing)}", at)
        return self._next_subscription(at)

    def _required_missing(self) -> Sequence[str]:
        return [u for u in self.SUBSCRIPTIONS if not self.inventory.has(u)]

    def _next_subscription(self, at: Instant) -> list[Output]:
        if self._subs_todo:
            return [self._command(Subscribe(self._subs_todo[0]), at)]
        self._phase = _Phase.TRANSFER
        return self._begin_transfer(at)

    def _on_subscribe(self, event: Input, at: Instant) -> list[Output]:
        if (
            isinstance(event, SubscribeDone)
            and self._subs_todo
            and event.uuid == self._subs_todo[0]
        ):
            self._subs_todo.pop(0)
            return self._next_subscription(at)
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"subscribe {event.uuid}: {event.reason}", at)
        if isinstance(event, Notified):
            # A cuff may indicate as soon as its CCCD is written, before the others are.
            return self._on_transfer_input(event, at)
        return []

    # ----------------------------------------------------------------------------- hooks

    @abstractmethod
    def _begin_transfer(self, at: Instant) -> list[Output]:
        """Start the record transfer once the link is bonded and subscribed."""

    @abstractmethod
    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        """Handle an input that arrives during the record transfer."""

    def _received_at(self, at: Instant) -> datetime:
        return at.utc
