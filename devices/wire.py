"""The MQTT payloads shared by gateway and ingest (topics in docs/architecture.md).

- `hv/v1/gw/{gateway_id}/readings`: a `hv.batch/1` envelope of canonical readings.
- `hv/v1/gw/{gateway_id}/quarantine`: a `hv.quarantine/1` envelope of packets the hub could not
  turn into readings (raw bytes, reason), so the server's quarantine shows every one of them;
  the receipt names their hub-local ids under `packets`.
- `hv/v1/gw/{gateway_id}/heartbeat`: a `hv.heartbeat/1` every few minutes and on connecting:
  the hub is alive, and when it last talked to each of its paired devices (contact, not
  readings: the data-freshness findings must never be mistaken for a patient not measuring);
  its `sent_at` (the hub's clock) lets ingest measure the hub's clock offset, and the optional
  `storage_full: true` says the hub's disk is full (it leaves new records on the devices).
- `hv/v1/gw/{gateway_id}/pairings`: a `hv.pairing/1` envelope of the hub's pairings and
  unpairings (device identity, kind, patient and cuff users, hub times), oldest first. The hub
  keeps each event until a receipt names it under `pairings`, and sends newer events only
  together with every older one not yet receipted, so the server sees them in order.
- `hv/v1/gw/{gateway_id}/status` and `hv/v1/ingest/{client_id}/status`: retained `online`,
  last will `offline`.
- `hv/v1/gw/{gateway_id}/receipts`: a `hv.receipt/1` listing the `reading_id`s ingest has
  durably committed, and those it quarantined (kept server-side, so the gateway may retire them
  too: resending a reading that will never validate would loop forever). `conflicts` (optional)
  names the quarantined ids whose content differed from the reading already stored under the
  same id; they are listed under `quarantined` too, so a hub that does not know the key still
  retires them. `sample_batches` (optional) names raw-sample batches written to the time series.
  `pairings` (optional) names the pairing events the server has kept (recorded, or quarantined
  when the hub may not report them).
- `hv/v1/gw/{gateway_id}/samples`: raw stream samples for the time series only
  (`devices.sample_wire`).

Parsing is per reading: one bad reading in a batch is rejected alone, the rest are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import orjson

from devices.errors import ReadingValidationError
from devices.reading import Reading, reading_from_json, reading_to_json

BATCH_SCHEMA: Final = "hv.batch/1"
QUARANTINE_SCHEMA: Final = "hv.quarantine/1"
HEARTBEAT_SCHEMA: Final = "hv.heartbeat/1"
PAIRING_SCHEMA: Final = "hv.pairing/1"
PAIRING_ACTIONS: Final = ("pair", "unpair")
MAX_PACKET_HEX: Final = 2 * 4096  # an ATT value is at most 512 bytes; generous
RECEIPT_SCHEMA: Final = "hv.receipt/1"
MAX_BATCH: Final = 1000


def readings_topic(gateway_id: str) -> str:
    """Topic a gateway publishes its reading batches on."""
    return f"hv/v1/gw/{gateway_id}/readings"


def receipts_topic(gateway_id: str) -> str:
    """Topic ingest publishes end-to-end receipts for a gateway on."""
    return f"hv/v1/gw/{gateway_id}/receipts"


def quarantine_topic(gateway_id: str) -> str:
    """Topic a gateway forwards its quarantined packets on."""
    return f"hv/v1/gw/{gateway_id}/quarantine"


def heartbeat_topic(gateway_id: str) -> str:
    """Topic a gateway publishes its heartbeat on."""
    return f"hv/v1/gw/{gateway_id}/heartbeat"


def pairings_topic(gateway_id: str) -> str:
    """Topic a gateway publishes its pairing events on."""
    return f"hv/v1/gw/{gateway_id}/pairings"


def status_topic(gateway_id: str) -> str:
    """Retained status topic of a gateway (last will: offline)."""
    return f"hv/v1/gw/{gateway_id}/status"


STATUS_ONLINE: Final = b"online"
STATUS_OFFLINE: Final = b"offline"
# Ingest announces itself as hubs do: retained `online` once it has subscribed, last will
# `offline`. Hubs subscribe to every ingest's status and resend what is pending at once.
INGEST_STATUS_FILTER: Final = "hv/v1/ingest/+/status"


def ingest_status_topic(client_id: str) -> str:
    """Retained status topic of one ingest replica (last will: offline)."""
    return f"hv/v1/ingest/{client_id}/status"


def is_ingest_status_topic(topic: str) -> bool:
    """True for `hv/v1/ingest/<id>/status`."""
    parts = topic.split("/")
    return len(parts) == 5 and parts[:3] == ["hv", "v1", "ingest"] and parts[4] == "status"


def gateway_id_from_topic(topic: str) -> str:
    """Return the gateway id of an `hv/v1/gw/{id}/...` topic.

    Raises:
        ReadingValidationError: the topic is not in the gateway tree.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[:3] != ["hv", "v1", "gw"] or not parts[3]:
        raise ReadingValidationError("$topic", f"{topic!r} is not hv/v1/gw/<id>/<stream>")
    return parts[3]


@dataclass(frozen=True, slots=True)
class RejectedReading:
    """A reading of a batch that failed validation; `raw` is kept for quarantine."""

    index: int
    raw: object
    error: ReadingValidationError

    @property
    def reading_id(self) -> str | None:
        """The reading id it claimed, if it claimed a string one."""
        if isinstance(self.raw, dict):
            claimed = self.raw.get("reading_id")
            if isinstance(claimed, str) and len(claimed) <= 64:
                return claimed
        return None


@dataclass(frozen=True, slots=True)
class Batch:
    """A parsed batch: the valid readings and the rejected ones, in payload order."""

    gateway_id: str
    readings: tuple[Reading, ...]
    rejected: tuple[RejectedReading, ...]


def encode_batch(gateway_id: str, readings: Sequence[Reading]) -> bytes:
    """Serialise readings into a batch payload."""
    body = {
        "schema": BATCH_SCHEMA,
        "gateway_id": gateway_id,
        "readings": [reading_to_json(r) for r in readings],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


# 19 digits in a row: a number that may not fit in 64 bits (or a long fraction, or an id).
# Found by mapping every ASCII digit to "0" and every other byte to " " (`bytes.translate`)
# and looking for 19 zeros: the same answer as searching rb"[0-9]{19}", about eight times
# faster on a 50 kB batch (the regular expression tries a match at every byte).
_DIGITS_AS_ZEROS: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN: Final = b"0" * 19


def has_long_digit_run(payload: bytes) -> bool:
    """True when `payload` holds 19 or more ASCII digits in a row."""
    return _LONG_RUN in payload.translate(_DIGITS_AS_ZEROS)


def loads(payload: bytes) -> object:
    """Parse JSON exactly as `json.loads` does, with a C parser where that is the same.

    orjson parses a reading batch in about a third of the time. It refuses what the standard
    library accepts (NaN and Infinity literals, 1e400, lone surrogates, UTF-16 with a BOM):
    those payloads are parsed again by `json.loads`, so they mean what they always meant. It
    turns an integer beyond 64 bits into a float where `json.loads` keeps it exact: a payload
    with 19 digits in a row goes to `json.loads` straight away (every integer of 18 digits
    fits in 64 bits).

    Raises:
        json.JSONDecodeError, UnicodeDecodeError, RecursionError: as `json.loads`.
    """
    if not has_long_digit_run(payload):
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            pass
    return json.loads(payload)


def decode_batch(payload: bytes, *, topic_gateway_id: str, now: datetime | None = None) -> Batch:
    """Parse a batch payload received on `topic_gateway_id`'s readings topic.

    A gateway may only submit readings for itself: the envelope's and each reading's
    `gateway_id` must equal the topic's.

    Raises:
        ReadingValidationError: the envelope itself is unusable (field ``"$"`` or an envelope
            field); individual bad readings are returned in `Batch.rejected` instead.
    """
    try:
        obj = loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReadingValidationError("$", f"payload is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ReadingValidationError("$", "payload must be a JSON object")
    if set(obj) != {"schema", "gateway_id", "readings"}:
        raise ReadingValidationError("$", "envelope must have exactly schema, gateway_id, readings")
    if obj["schema"] != BATCH_SCHEMA:
        raise ReadingValidationError("schema", f"must be {BATCH_SCHEMA!r}")
    if obj["gateway_id"] != topic_gateway_id:
        raise ReadingValidationError("gateway_id", "does not match the topic's gateway")
    items = obj["readings"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ReadingValidationError("readings", f"must be a list of 1-{MAX_BATCH} readings")
    good: list[Reading] = []
    bad: list[RejectedReading] = []
    for index, item in enumerate(items):
        try:
            reading = reading_from_json(item, now=now)
            if reading.gateway_id != topic_gateway_id:
                raise ReadingValidationError("gateway_id", "does not match the topic's gateway")
        except ReadingValidationError as exc:
            bad.append(RejectedReading(index, item, exc))
        else:
            good.append(reading)
    return Batch(topic_gateway_id, tuple(good), tuple(bad))


@dataclass(frozen=True, slots=True)
class HubPacket:
    """A packet the hub quarantined: what the device sent, why it was kept aside, and when.

    `packet_id` is the hub's own row id (never reused), which the receipt echoes back.
    """

    packet_id: int
    device_id: str
    characteristic: str
    raw: bytes
    reason: str
    received_at: datetime


def packet_to_json(packet: HubPacket) -> dict[str, object]:
    """The JSON form of one forwarded packet (raw bytes as hex)."""
    return {
        "packet_id": packet.packet_id,
        "device_id": packet.device_id,
        "characteristic": packet.characteristic,
        "raw_hex": packet.raw.hex(),
        "reason": packet.reason,
        "received_at": packet.received_at.astimezone(UTC).isoformat(),
    }


def encode_packets(gateway_id: str, packets: Sequence[HubPacket]) -> bytes:
    """Serialise quarantined packets into a `hv.quarantine/1` payload."""
    body = {
        "schema": QUARANTINE_SCHEMA,
        "gateway_id": gateway_id,
        "packets": [packet_to_json(p) for p in packets],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _packet(item: object, index: int) -> HubPacket:
    where = f"packets[{index}]"
    if not isinstance(item, dict) or set(item) != {
        "packet_id",
        "device_id",
        "characteristic",
        "raw_hex",
        "reason",
        "received_at",
    }:
        raise ReadingValidationError(where, "must be an object with exactly the packet fields")
    packet_id = item["packet_id"]
    if type(packet_id) is not int or not 0 <= packet_id < 2**63:
        raise ReadingValidationError(f"{where}.packet_id", "must be a non-negative integer")
    texts = {}
    for key, limit in (("device_id", 64), ("characteristic", 64), ("reason", 1000)):
        value = item[key]
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise ReadingValidationError(f"{where}.{key}", f"must be a string of 1-{limit} chars")
        texts[key] = value
    raw_hex = item["raw_hex"]
    try:
        if not isinstance(raw_hex, str) or len(raw_hex) > MAX_PACKET_HEX:
            raise ValueError
        raw = bytes.fromhex(raw_hex)
    except ValueError:
        raise ReadingValidationError(f"{where}.raw_hex", "must be hex, at most 4 KiB") from None
    try:
        received_at = datetime.fromisoformat(str(item["received_at"]))
    except ValueError:
        received_at = None
    if received_at is None or received_at.tzinfo is None:
        raise ReadingValidationError(f"{where}.received_at", "must be an aware ISO 8601 time")
    return HubPacket(
        packet_id,
        texts["device_id"],
        texts["characteristic"],
        raw,
        texts["reason"],
        received_at.astimezone(UTC),
    )


def decode_packets(payload: bytes, *, topic_gateway_id: str) -> tuple[HubPacket, ...]:
    """Parse a `hv.quarantine/1` payload received on `topic_gateway_id`'s quarantine topic.

    Raises:
        ReadingValidationError: the payload (or any packet in it) is not valid.
    """
    obj = _json_object(payload, {"schema", "gateway_id", "packets"}, "envelope")
    if obj["schema"] != QUARANTINE_SCHEMA:
        raise ReadingValidationError("schema", f"must be {QUARANTINE_SCHEMA!r}")
    if obj["gateway_id"] != topic_gateway_id:
        raise ReadingValidationError("gateway_id", "does not match the topic's gateway")
    items = obj["packets"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ReadingValidationError("packets", f"must be a list of 1-{MAX_BATCH} packets")
    return tuple(_packet(item, i) for i, item in enumerate(items))


@dataclass(frozen=True, slots=True)
class DeviceContact:
    """A paired device as its hub reports it: whose it is and when the hub last reached it."""

    device_id: str
    patient_id: str
    kind: str
    paired_at: datetime
    last_contact_at: datetime | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The hub is alive at `sent_at` (its clock) and has these devices paired; `storage_full`:
    its outbox cannot store new records (the disk, or the outbox's size cap, is full)."""

    gateway_id: str
    sent_at: datetime
    devices: tuple[DeviceContact, ...]
    storage_full: bool = False


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def encode_heartbeat(beat: Heartbeat) -> bytes:
    """Serialise a heartbeat."""
    body: dict[str, object] = {
        "schema": HEARTBEAT_SCHEMA,
        "gateway_id": beat.gateway_id,
        "sent_at": _iso(beat.sent_at),
        "devices": [
            {"device_id": d.device_id, "patient_id": d.patient_id, "kind": d.kind,
             "paired_at": _iso(d.paired_at), "last_contact_at": _iso(d.last_contact_at)}
            for d in beat.devices
        ],
    }  # fmt: skip
    if beat.storage_full:  # only when true: a hub with room says what it always said
        body["storage_full"] = True
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _aware(value: object, where: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    try:
        parsed = datetime.fromisoformat(str(value)) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise ReadingValidationError(where, "must be an aware ISO 8601 time")
    return parsed.astimezone(UTC)


def _text(value: object, where: str, limit: int = 64) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise ReadingValidationError(where, f"must be a string of 1-{limit} characters")
    return value


def _json_object(
    payload: bytes, keys: set[str], what: str, optional: frozenset[str] = frozenset()
) -> dict[str, object]:
    """The payload as a JSON object with exactly `keys` (and any of `optional`).

    Raises:
        ReadingValidationError: not JSON, not an object, or other keys.
    """
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReadingValidationError("$", f"{what} is not JSON: {exc}") from None
    if not isinstance(obj, dict) or not keys <= set(obj) <= keys | optional:
        raise ReadingValidationError("$", f"{what} must have exactly {', '.join(sorted(keys))}")
    return obj


def decode_heartbeat(payload: bytes, *, topic_gateway_id: str) -> Heartbeat:
    """Parse a heartbeat received on `topic_gateway_id`'s heartbeat topic.

    Raises:
        ReadingValidationError: the payload is not a valid heartbeat.
    """
    obj = _json_object(
        payload, {"schema", "gateway_id", "sent_at", "devices"}, "heartbeat",
        frozenset({"storage_full"}),
    )  # fmt: skip
    if obj["schema"] != HEARTBEAT_SCHEMA:
        raise ReadingValidationError("schema", f"must be {HEARTBEAT_SCHEMA!r}")
    if obj["gateway_id"] != topic_gateway_id:
        raise ReadingValidationError("gateway_id", "does not match the topic's gateway")
    items = obj["devices"]
    if not isinstance(items, list) or len(items) > MAX_BATCH:
        raise ReadingValidationError("devices", f"must be a list of at most {MAX_BATCH}")
    keys = {"device_id", "patient_id", "kind", "paired_at", "last_contact_at"}
    devices = []
    for i, item in enumerate(items):
        where = f"devices[{i}]"
        if not isinstance(item, dict) or set(item) != keys:
            raise ReadingValidationError(where, f"must have exactly {sorted(keys)}")
        paired = _aware(item["paired_at"], f"{where}.paired_at")
        assert paired is not None
        devices.append(
            DeviceContact(
                _text(item["device_id"], f"{where}.device_id"),
                _text(item["patient_id"], f"{where}.patient_id"),
                _text(item["kind"], f"{where}.kind", 32),
                paired,
                _aware(item["last_contact_at"], f"{where}.last_contact_at", optional=True),
            )
        )
    sent = _aware(obj["sent_at"], "sent_at")
    assert sent is not None
    storage_full = obj.get("storage_full", False)
    if not isinstance(storage_full, bool):
        raise ReadingValidationError("storage_full", "must be true or false")
    return Heartbeat(topic_gateway_id, sent, tuple(devices), storage_full)


@dataclass(frozen=True, slots=True)
class PairingEvent:
    """A device paired to (or unpaired from) the hub's patients, as the hub's registry had it.

    `event_id` is the hub's own id for the event (unique per hub, the server's dedupe key);
    `user_patients` maps a shared cuff's user indexes to patients (empty: every reading of the
    device is `patient_id`'s); `paired_at` and `at` (when this event happened) are hub times.
    """

    event_id: str
    action: str  # PAIRING_ACTIONS
    device_id: str
    kind: str
    patient_id: str
    user_patients: tuple[tuple[int, str], ...]
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    paired_at: datetime
    at: datetime

    @property
    def patient_ids(self) -> tuple[str, ...]:
        """Every patient the device's readings go to, `patient_id` first."""
        others = (p for _, p in self.user_patients if p != self.patient_id)
        return tuple(dict.fromkeys((self.patient_id, *others)))


_PAIRING_KEYS: Final = frozenset(
    {"event_id", "action", "device_id", "kind", "patient_id", "user_patients", "manufacturer",
     "model", "serial", "firmware", "paired_at", "at"}
)  # fmt: skip


def pairing_to_json(event: PairingEvent) -> dict[str, object]:
    """The JSON form of one pairing event."""
    return {
        "event_id": event.event_id,
        "action": event.action,
        "device_id": event.device_id,
        "kind": event.kind,
        "patient_id": event.patient_id,
        "user_patients": [[index, patient] for index, patient in event.user_patients],
        "manufacturer": event.manufacturer,
        "model": event.model,
        "serial": event.serial,
        "firmware": event.firmware,
        "paired_at": _iso(event.paired_at),
        "at": _iso(event.at),
    }


def encode_pairings(gateway_id: str, events: Sequence[PairingEvent]) -> bytes:
    """Serialise pairing events (oldest first) into a `hv.pairing/1` payload."""
    body = {
        "schema": PAIRING_SCHEMA,
        "gateway_id": gateway_id,
        "events": [pairing_to_json(e) for e in events],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _users(value: object, where: str) -> tuple[tuple[int, str], ...]:
    if not isinstance(value, list) or len(value) > 8:
        raise ReadingValidationError(where, "must be a list of at most 8 [user index, patient]")
    users: list[tuple[int, str]] = []
    for i, pair in enumerate(value):
        if not isinstance(pair, list) or len(pair) != 2 or type(pair[0]) is not int:
            raise ReadingValidationError(f"{where}[{i}]", "must be [user index, patient id]")
        if not 1 <= pair[0] <= 254:
            raise ReadingValidationError(f"{where}[{i}]", "user index must be 1 to 254")
        users.append((pair[0], _text(pair[1], f"{where}[{i}]")))
    if len({index for index, _ in users}) != len(users):
        raise ReadingValidationError(where, "names a user index twice")
    return tuple(sorted(users))


def pairing_from_json(item: object, where: str = "event") -> PairingEvent:
    """Validate one pairing event's JSON.

    Raises:
        ReadingValidationError: naming the field (prefixed with `where`).
    """
    if not isinstance(item, dict) or set(item) != _PAIRING_KEYS:
        raise ReadingValidationError(where, f"must have exactly {sorted(_PAIRING_KEYS)}")
    action = item["action"]
    if action not in PAIRING_ACTIONS:
        raise ReadingValidationError(f"{where}.action", f"must be one of {PAIRING_ACTIONS}")
    paired_at = _aware(item["paired_at"], f"{where}.paired_at")
    at = _aware(item["at"], f"{where}.at")
    assert paired_at is not None and at is not None
    return PairingEvent(
        event_id=_text(item["event_id"], f"{where}.event_id"),
        action=str(action),
        device_id=_text(item["device_id"], f"{where}.device_id"),
        kind=_text(item["kind"], f"{where}.kind", 32),
        patient_id=_text(item["patient_id"], f"{where}.patient_id"),
        user_patients=_users(item["user_patients"], f"{where}.user_patients"),
        manufacturer=_optional_text(item["manufacturer"], f"{where}.manufacturer"),
        model=_optional_text(item["model"], f"{where}.model"),
        serial=_optional_text(item["serial"], f"{where}.serial"),
        firmware=_optional_text(item["firmware"], f"{where}.firmware"),
        paired_at=paired_at,
        at=at,
    )


@dataclass(frozen=True, slots=True)
class RejectedPairing:
    """A pairing event that failed validation, with the event id it claimed (if any)."""

    index: int
    raw: object
    error: ReadingValidationError

    @property
    def event_id(self) -> str | None:
        """The event id it claimed, if it claimed a usable one."""
        if isinstance(self.raw, dict):
            claimed = self.raw.get("event_id")
            if isinstance(claimed, str) and 0 < len(claimed) <= 64:
                return claimed
        return None


def decode_pairings(
    payload: bytes, *, topic_gateway_id: str
) -> tuple[tuple[PairingEvent, ...], tuple[RejectedPairing, ...]]:
    """Parse a `hv.pairing/1` payload received on `topic_gateway_id`'s pairings topic: the
    valid events and the rejected ones, in payload order.

    Raises:
        ReadingValidationError: the envelope itself is unusable.
    """
    obj = _json_object(payload, {"schema", "gateway_id", "events"}, "envelope")
    if obj["schema"] != PAIRING_SCHEMA:
        raise ReadingValidationError("schema", f"must be {PAIRING_SCHEMA!r}")
    if obj["gateway_id"] != topic_gateway_id:
        raise ReadingValidationError("gateway_id", "does not match the topic's gateway")
    items = obj["events"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ReadingValidationError("events", f"must be a list of 1-{MAX_BATCH} events")
    good: list[PairingEvent] = []
    bad: list[RejectedPairing] = []
    for index, item in enumerate(items):
        try:
            good.append(pairing_from_json(item, f"events[{index}]"))
        except ReadingValidationError as exc:
            bad.append(RejectedPairing(index, item, exc))
    return tuple(good), tuple(bad)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Ingest's end-to-end acknowledgement: these ids are durably stored or quarantined.

    `packets` are hub packet ids (`HubPacket.packet_id`) now kept in the server's quarantine;
    `sample_batches` are raw-sample batch ids (`devices.sample_wire`) written to the time
    series or quarantined: the hub stops resending them.
    """

    committed: tuple[str, ...]
    quarantined: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()
    packets: tuple[int, ...] = ()
    sample_batches: tuple[str, ...] = ()
    pairings: tuple[str, ...] = ()


def encode_receipt(receipt: Receipt) -> bytes:
    """Serialise a receipt (`conflicts`, `packets` and `pairings` only when there are any)."""
    body: dict[str, object] = {
        "schema": RECEIPT_SCHEMA,
        "committed": list(receipt.committed),
        "quarantined": list(receipt.quarantined),
    }
    if receipt.conflicts:
        body["conflicts"] = list(receipt.conflicts)
    if receipt.packets:
        body["packets"] = list(receipt.packets)
    if receipt.sample_batches:
        body["sample_batches"] = list(receipt.sample_batches)
    if receipt.pairings:
        body["pairings"] = list(receipt.pairings)
    return json.dumps(body, separators=(",", ":")).encode()


def decode_receipt(payload: bytes) -> Receipt:
    """Parse a receipt payload.

    Raises:
        ReadingValidationError: the payload is not a valid receipt.
    """
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ReadingValidationError("$", f"receipt is not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema") != RECEIPT_SCHEMA:
        raise ReadingValidationError("schema", f"must be {RECEIPT_SCHEMA!r}")
    out: dict[str, tuple[str, ...]] = {}
    for key in ("committed", "quarantined", "conflicts", "sample_batches", "pairings"):
        ids = obj.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ReadingValidationError(key, "must be a list of id strings")
        out[key] = tuple(ids)
    packets = obj.get("packets", [])
    if not isinstance(packets, list) or not all(type(i) is int for i in packets):
        raise ReadingValidationError("packets", "must be a list of packet ids")
    return Receipt(
        out["committed"],
        out["quarantined"],
        out["conflicts"],
        tuple(packets),
        sample_batches=out["sample_batches"],
        pairings=out["pairings"],
    )
