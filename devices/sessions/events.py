"""What goes in and out of a record-transfer session (h11 style: inputs, commands, events).

A session never touches a radio. The adapter feeds it `Input`s (what the GATT client saw or
finished), together with an `Instant`, and executes the `Command`s it returns, reporting each
completion back as an input. `Event`s are what the session concluded: records to store,
packets to quarantine, the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from devices.reading import DeviceInfo, Kind, Reading


@dataclass(frozen=True, slots=True)
class Instant:
    """The time an input happened: monotonic seconds for timers, UTC wall clock for provenance."""

    monotonic_s: float
    utc: datetime


@dataclass(frozen=True, slots=True)
class DeviceCursor:
    """How far the gateway has stored a device's records (moves only with the records)."""

    last_sequence: int | None = None
    last_device_time: str | None = None


# --------------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class PairDone:
    """The bond attempt finished; `ok` False when the device refused or the passkey failed."""

    ok: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ReadDone:
    """A characteristic read returned `data`."""

    uuid: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SubscribeDone:
    """Notifications or indications are enabled on `uuid`."""

    uuid: str


@dataclass(frozen=True, slots=True)
class WriteDone:
    """A write with response to `uuid` completed."""

    uuid: str


@dataclass(frozen=True, slots=True)
class Notified:
    """A notification or indication arrived on `uuid`."""

    uuid: str
    data: bytes


@dataclass(frozen=True, slots=True)
class OperationFailed:
    """A GATT operation the session asked for failed (ATT error, not permitted, ...);
    `att_error` is the ATT error code when the device answered with one."""

    uuid: str
    reason: str
    att_error: int | None = None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The link dropped."""

    reason: str = ""


Input = PairDone | ReadDone | SubscribeDone | WriteDone | Notified | OperationFailed | Disconnected

# --------------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Pair:
    """Bond with the device (passkey entry happens in the adapter's agent)."""

    not_before_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Read:
    """Read a characteristic."""

    uuid: str
    not_before_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Enable notifications or indications (whichever the characteristic supports)."""

    uuid: str
    not_before_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Write:
    """Write `data` with response. `not_before_s` paces GATT operations (monotonic seconds)."""

    uuid: str
    data: bytes
    not_before_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Disconnect:
    """End the connection."""

    not_before_s: float = 0.0


Command = Pair | Read | Subscribe | Write | Disconnect

# --------------------------------------------------------------------------------- events


class Outcome(StrEnum):
    """How a session ended."""

    COMPLETE = "complete"  # everything the device holds beyond the cursor was fetched
    NOTHING_NEW = "nothing_new"
    PAIRING_REFUSED = "pairing_refused"  # reported to the patient: pair again
    NOT_BONDED = "not_bonded"  # the device forgot the bond (insufficient authentication)
    IDENTITY_MISMATCH = "identity_mismatch"  # a different device answered at that address
    DISCONNECTED = "disconnected"  # complete records kept up to the first gap; rest next time
    TIMEOUT = "timeout"  # the device went silent; complete records kept as on a disconnect
    DEVICE_ERROR = "device_error"  # RACP failure other than "not supported"
    UNSUPPORTED = "unsupported"  # the device lacks the service this session needs


@dataclass(frozen=True, slots=True)
class ClockRead:
    """The device clock was read: `offset_s` = device clock minus gateway local clock."""

    device_time: str
    gateway_utc: datetime
    offset_s: float
    will_set: bool


@dataclass(frozen=True, slots=True)
class QuarantinedPacket:
    """A packet the session could not use, kept with its raw bytes (never dropped silently)."""

    uuid: str
    raw: bytes
    reason: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class RecordsReady:
    """Records to store atomically with the new cursor, before anything is published.

    `cursor` None leaves the stored cursor where it is (quarantined packets only).
    """

    readings: tuple[Reading, ...]
    cursor: DeviceCursor | None
    quarantined: tuple[QuarantinedPacket, ...] = ()


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a stream as it arrived (heart rate per beat or per second, SpO2, ...):
    `at` is the hub's UTC receive time; `values` in the kind's canonical units."""

    at: datetime
    values: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class SamplesReady:
    """Stream samples to keep on the hub (raw, for a while) and reduce into per-minute
    summaries there; nothing here is published as is."""

    kind: Kind
    samples: tuple[Sample, ...]


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The session is over; the adapter disconnects. `detail` explains failures in words."""

    outcome: Outcome
    detail: str = ""
    device: DeviceInfo | None = None
    stats: dict[str, int] = field(default_factory=dict)


Event = ClockRead | RecordsReady | SamplesReady | SessionEnded
Output = Command | Event
