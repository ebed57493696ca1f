"""The MQTT payloads shared by gateway and ingest (topics in docs/architecture.md).

- `hv/v1/gw/{gateway_id}/readings`: a `hv.batch/1` envelope of canonical readings.
- `hv/v1/gw/{gateway_id}/status` and `hv/v1/ingest/{client_id}/status`: retained `online`,
  last will `offline`.
- `hv/v1/gw/{gateway_id}/receipts`: a `hv.receipt/1` listing the `reading_id`s ingest has
  durably committed, and those it quarantined (kept server-side, so the gateway may retire them
  too: resending a reading that will never validate would loop forever). `conflicts` (optional)
  names the quarantined ids whose content differed from the reading already stored under the
  same id; they are listed under `quarantined` too, so a hub that does not know the key still
  retires them.

Parsing is per reading: one bad reading in a batch is rejected alone, the rest are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from devices.errors import ReadingValidationError
from devices.reading import Reading, reading_from_json, reading_to_json

BATCH_SCHEMA: Final = "hv.batch/1"
RECEIPT_SCHEMA: Final = "hv.receipt/1"
MAX_BATCH: Final = 1000


def readings_topic(gateway_id: str) -> str:
    """Topic a gateway publishes its reading batches on."""
    return f"hv/v1/gw/{gateway_id}/readings"


def receipts_topic(gateway_id: str) -> str:
    """Topic ingest publishes end-to-end receipts for a gateway on."""
    return f"hv/v1/gw/{gateway_id}/receipts"


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


def decode_batch(payload: bytes, *, topic_gateway_id: str, now: datetime | None = None) -> Batch:
    """Parse a batch payload received on `topic_gateway_id`'s readings topic.

    A gateway may only submit readings for itself: the envelope's and each reading's
    `gateway_id` must equal the topic's.

    Raises:
        ReadingValidationError: the envelope itself is unusable (field ``"$"`` or an envelope
            field); individual bad readings are returned in `Batch.rejected` instead.
    """
    try:
        obj = json.loads(payload)
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
class Receipt:
    """Ingest's end-to-end acknowledgement: these ids are durably stored or quarantined."""

    committed: tuple[str, ...]
    quarantined: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


def encode_receipt(receipt: Receipt) -> bytes:
    """Serialise a receipt (`conflicts` only when there are any)."""
    body: dict[str, object] = {
        "schema": RECEIPT_SCHEMA,
        "committed": list(receipt.committed),
        "quarantined": list(receipt.quarantined),
    }
    if receipt.conflicts:
        body["conflicts"] = list(receipt.conflicts)
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
    for key in ("committed", "quarantined", "conflicts"):
        ids = obj.get(key, [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ReadingValidationError(key, "must be a list of reading id strings")
        out[key] = tuple(ids)
    return Receipt(out["committed"], out["quarantined"], out["conflicts"])
