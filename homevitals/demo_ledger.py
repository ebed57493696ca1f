"""Where every reading a device produced ended up (pure: the evidence comes in as data).

The demo's self-check passes only when each record a simulated meter, cuff, scale,
thermometer or oximeter (its stored spot-checks) holds is accounted for, and says where:

- **stored**: its `reading_id` is in the record store (a second copy the device itself stored
  twice is *stored once*: the same id);
- **quarantined**, with the reason: ingest kept the reading in its quarantine, or the hub kept
  the packet the device sent (a truncated indication) and forwarded it there;
- **still on the device**, with the reason: a meter's record after the hub's cursor (the next
  session fetches it), an episodic device's reading it has not sent yet;

and nothing is *on the hub* (committed in its outbox, not yet confirmed by ingest) or
**unaccounted** (sent, or behind the hub's cursor, and then found nowhere: a reading lost).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

SEQUENCE_SPACE: Final = 1 << 16  # GLS sequence numbers are u16 and wrap


class Fate(StrEnum):
    """Where a device's record ended up."""

    STORED = "stored"
    DUPLICATE = "stored once (a copy the device kept twice)"
    QUARANTINED = "quarantined"
    ON_DEVICE = "still on the device"
    ON_HUB = "on the hub, not confirmed by ingest"
    UNACCOUNTED = "unaccounted"


ACCOUNTED: Final = frozenset({Fate.STORED, Fate.DUPLICATE, Fate.QUARANTINED, Fate.ON_DEVICE})


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One record in a device's memory.

    Attributes:
        device_id: the device's id (from its Device Information, as the hub derives it).
        label: how a person names the device (model and the last digits of the serial).
        reading_id: the id the hub must give it.
        sequence: a meter's sequence number (None for a cuff, scale, thermometer or oximeter).
        raw: the bytes the device sends for it (the measurement characteristic's value).
        sent: a cuff's, scale's, thermometer's or oximeter's "delivered" mark (a host
            confirmed the indication); None for a meter.
    """

    device_id: str
    label: str
    reading_id: str
    sequence: int | None
    raw: bytes
    sent: bool | None = None


@dataclass(frozen=True, slots=True)
class Packet:
    """A packet kept in quarantine (by ingest or still on the hub), with why."""

    device_id: str
    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class HubDevice:
    """What the hub knows of one device: its cursor and how its last session ended."""

    last_sequence: int | None = None
    last_outcome: str | None = None


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything the ledger looks at (gathered by `homevitals.demo_check`)."""

    stored: frozenset[str] = frozenset()
    quarantined: Mapping[str, str] = field(default_factory=dict)  # reading id -> reason
    packets: Sequence[Packet] = ()
    on_hub: frozenset[str] = frozenset()  # reading ids pending in a hub's outbox
    hub_devices: Mapping[str, HubDevice] = field(default_factory=dict)  # by device id


@dataclass(frozen=True, slots=True)
class Entry:
    """One record and where it ended up."""

    record: DeviceRecord
    fate: Fate
    reason: str = ""


def after_cursor(sequence: int, cursor: int | None) -> bool:
    """A meter's record the hub has not fetched yet: no cursor, or in the half of the sequence
    space after it (sequence numbers wrap at 65535)."""
    if cursor is None:
        return True
    return 0 < (sequence - cursor) % SEQUENCE_SPACE <= SEQUENCE_SPACE // 2


def _matching_packet(record: DeviceRecord, packets: list[Packet]) -> Packet | None:
    """The first unused packet of the device that is the record's bytes or a cut of them."""
    for packet in packets:
        if (
            packet.device_id == record.device_id
            and packet.raw
            and record.raw.startswith(packet.raw)
        ):
            packets.remove(packet)
            return packet
    return None


def _left_on_device(record: DeviceRecord, evidence: Evidence) -> str | None:
    """Why a record is still on its device, or None when it should have left it."""
    if record.sequence is None:  # episodic: it says whether a host confirmed the reading
        if record.sent:
            return None
        return "not sent yet (the device sends its unsent readings when the hub next connects)"
    hub = evidence.hub_devices.get(record.device_id, HubDevice())
    if not after_cursor(record.sequence, hub.last_sequence):
        return None
    if hub.last_sequence is None:
        return "not fetched: the hub has no session with this meter on record"
    ended = f", its last session ended {hub.last_outcome}" if hub.last_outcome else ""
    return f"after the hub's cursor (sequence {hub.last_sequence}{ended}): the next sync fetches it"


def account(records: Iterable[DeviceRecord], evidence: Evidence) -> list[Entry]:
    """Where each record ended up, in the order given."""
    packets = list(evidence.packets)
    seen: set[tuple[str, str]] = set()
    out: list[Entry] = []
    for record in records:
        key = (record.device_id, record.reading_id)
        if record.reading_id in evidence.stored:
            fate = Fate.DUPLICATE if key in seen else Fate.STORED
            seen.add(key)
            out.append(Entry(record, fate))
            continue
        reason = evidence.quarantined.get(record.reading_id)
        if reason is not None:
            out.append(Entry(record, Fate.QUARANTINED, reason))
            continue
        packet = _matching_packet(record, packets)
        if packet is not None:
            out.append(Entry(record, Fate.QUARANTINED, packet.reason))
            continue
        if record.reading_id in evidence.on_hub:
            out.append(Entry(record, Fate.ON_HUB, "committed on the hub, awaiting ingest"))
            continue
        why = _left_on_device(record, evidence)
        if why is not None:
            out.append(Entry(record, Fate.ON_DEVICE, why))
            continue
        out.append(
            Entry(
                record,
                Fate.UNACCOUNTED,
                "the device sent it (or the hub's cursor is past it), and it is not stored, "
                "not quarantined and not on the hub",
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts per fate, and the reasons given for quarantined and on-device records."""

    produced: int
    by_fate: Mapping[Fate, int]
    reasons: Mapping[tuple[Fate, str], int]

    @property
    def ok(self) -> bool:
        """Every record accounted for (stored, quarantined or on the device, with a reason)."""
        return all(fate in ACCOUNTED for fate, n in self.by_fate.items() if n)

    def count(self, fate: Fate) -> int:
        """How many records ended up so."""
        return self.by_fate.get(fate, 0)


_PAYLOAD = re.compile(r"\s*\(payload [0-9a-fA-F]*\)$")


def reason_kind(reason: str) -> str:
    """A reason without the bytes it quotes, so that like reasons count together."""
    return _PAYLOAD.sub("", reason)


def tally(entries: Sequence[Entry]) -> Tally:
    """Count the entries per fate and per kind of reason."""
    by_fate = Counter(e.fate for e in entries)
    reasons = Counter((e.fate, reason_kind(e.reason)) for e in entries if e.reason)
    return Tally(len(entries), dict(by_fate), dict(reasons))
