"""Pure check of a re-received reading against the one already stored under its id.

A `reading_id` is derived from the device's identity, the kind, the sequence number and the raw
device time, so the same record fetched twice (a resend, another hub, a redelivery) has the same
id *and the same content*. A reading that arrives under an existing id with different content is
not a duplicate: something upstream is wrong (a device that reuses sequence numbers with a frozen
clock, a corrupted outbox, a forged payload). It must neither replace the stored version nor
vanish: ingest keeps the stored one, quarantines the new one with reason ``conflict`` and says so
in the receipt.

What counts as content is what the device measured and who it belongs to: patient, kind, device,
the canonical values, the values exactly as the device sent them, and the context. The hub's own
view of the session (`measured_at` corrected by that session's clock offset, `received_at`,
`gateway_id`, the hub-derived status flags) may legitimately differ between two fetches of one
record and is not compared.

No I/O: the stored row comes in as a mapping of column names to values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

from devices.reading import Reading, reading_to_json
from ingest.rows import QuarantineItem, reading_row, to_json

CONTENT_COLUMNS: Final = ("patient_id", "kind", "device_id", "values", "original", "context")
CONFLICT_REASON: Final = "conflict"
_JSON_COLUMNS: Final = frozenset({"values", "original", "context"})


def _normal(column: str, value: object) -> object:
    # JSON documents come back from PostgreSQL (JSONB) and SQLite as parsed objects; the
    # reading's side goes through the same text form so 1 == 1.0 and key order do not matter.
    if column in _JSON_COLUMNS:
        return json.loads(to_json(value))
    return value


def content_of(reading: Reading) -> dict[str, object]:
    """The compared content of a reading, in the stored row's form."""
    row = reading_row(reading, stored_at=reading.received_at)
    return {c: _normal(c, row[c]) for c in CONTENT_COLUMNS}


def differing_columns(stored: Mapping[str, object], reading: Reading) -> tuple[str, ...]:
    """The content columns in which `reading` differs from the `stored` row (empty: same)."""
    received = content_of(reading)
    return tuple(c for c in CONTENT_COLUMNS if _normal(c, stored[c]) != received[c])


def conflict_item(topic: str, reading: Reading, columns: tuple[str, ...]) -> QuarantineItem:
    """The quarantine item keeping the received version of a conflicting reading.

    The stored version stays in `readings`; the received one is kept here as its wire JSON, with
    the differing columns in `field` and the reason ``conflict: ...``.
    """
    payload = json.dumps(reading_to_json(reading), separators=(",", ":"), ensure_ascii=False)
    return QuarantineItem(
        topic,
        payload.encode(),
        ",".join(columns),
        f"{CONFLICT_REASON}: differs from the reading stored under this id in "
        + ", ".join(columns),
        gateway_id=reading.gateway_id,
        reading_id=reading.reading_id,
    )
