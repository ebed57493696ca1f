"""Pure mapping from validated readings and rejected payloads to record-store rows.

No I/O and no clock: the time a row is stored at is passed in. The column names are those of
`ingest.schema`; the typed numeric columns (`glucose_mmol_l`, `systolic_mmhg`, ...) hold the
canonical value when it is a number and NULL when it is absent or an IEEE 11073 special value
(which stays, as its JSON spelling, in the `values` document).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from devices.reading import CONTROL_SOLUTION, Reading, Value
from devices.special import Special

# Values copied into typed columns, so the rules engine reads columns, not JSON.
TYPED_VALUES: Final = ("glucose_mmol_l", "systolic_mmhg", "diastolic_mmhg", "pulse_per_min")

Row = dict[str, object]


@dataclass(frozen=True, slots=True)
class QuarantineItem:
    """A payload (or one reading of it) that did not validate, kept with why and where.

    `payload` is the exact bytes received for a whole-envelope failure, and the reading's own
    JSON (re-serialised from the parsed batch) for a single rejected reading.
    """

    topic: str
    payload: bytes
    field: str
    reason: str
    gateway_id: str | None = None
    reading_id: str | None = None
    index: int | None = None


def _json_value(value: Value) -> float | str:
    return value.value if isinstance(value, Special) else value


def _typed(values: Mapping[str, Value], name: str) -> float | None:
    value = values.get(name)
    return value if isinstance(value, float) else None


def reading_row(reading: Reading, *, stored_at: datetime) -> Row:
    """Return the `readings` row of a validated reading (without the surrogate `id`)."""
    values = reading.values
    meal = reading.context.get("meal")
    return {
        "reading_id": reading.reading_id,
        "patient_id": reading.patient_id,
        "gateway_id": reading.gateway_id,
        "device_id": reading.device.id,
        "kind": reading.kind.value,
        "measured_at": reading.measured_at,
        "received_at": reading.received_at,
        "stored_at": stored_at,
        "sequence": reading.sequence,
        "device_time": reading.device_time,
        "device_time_offset_min": reading.device_time_offset_min,
        "clock_offset_s": reading.clock_offset_s,
        "glucose_mmol_l": _typed(values, "glucose_mmol_l"),
        "systolic_mmhg": _typed(values, "systolic_mmhg"),
        "diastolic_mmhg": _typed(values, "diastolic_mmhg"),
        "pulse_per_min": _typed(values, "pulse_per_min"),
        "meal": meal if isinstance(meal, str) else None,
        "control_solution": CONTROL_SOLUTION in reading.status,
        "status": list(reading.status),
        "values": {k: _json_value(v) for k, v in values.items()},
        "original": [
            {"name": o.name, "value": _json_value(o.value), "unit": o.unit}
            for o in reading.original
        ],
        "context": dict(reading.context),
    }


def patient_rows(readings: Iterable[Reading], *, stored_at: datetime) -> list[Row]:
    """Return one `patients` row per distinct patient, sorted (a stable lock order)."""
    ids = sorted({r.patient_id for r in readings})
    return [{"patient_id": p, "first_seen_at": stored_at} for p in ids]


def device_rows(readings: Iterable[Reading], *, stored_at: datetime) -> list[Row]:
    """Return one `devices` row per distinct device (first description wins), sorted."""
    seen: dict[str, Row] = {}
    for r in readings:
        if r.device.id not in seen:
            seen[r.device.id] = {
                "device_id": r.device.id,
                "manufacturer": r.device.manufacturer,
                "model": r.device.model,
                "serial": r.device.serial,
                "firmware": r.device.firmware,
                "first_seen_at": stored_at,
            }
    return [seen[k] for k in sorted(seen)]


def quarantine_digest(topic: str, payload: bytes, index: int | None) -> str:
    """Identity of a quarantined item: the same bad payload redelivered is kept once."""
    h = hashlib.sha256()
    h.update(topic.encode())
    h.update(b"\0" + (b"-" if index is None else str(index).encode()) + b"\0")
    h.update(payload)
    return h.hexdigest()


def quarantine_row(item: QuarantineItem, *, received_at: datetime) -> Row:
    """Return the `quarantine` row of a rejected payload or reading."""
    return {
        "digest": quarantine_digest(item.topic, item.payload, item.index),
        "received_at": received_at,
        "topic": item.topic,
        "gateway_id": item.gateway_id,
        "reading_id": item.reading_id,
        "item_index": item.index,
        "field": item.field[:200],
        "reason": item.reason[:1000],
        "payload": item.payload,
    }


def rejected_payload(raw: object) -> bytes:
    """Serialise one rejected reading's parsed JSON back to bytes for quarantine."""
    try:
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False).encode()
    except (TypeError, ValueError):
        return repr(raw).encode()


def unique_ids(ids: Sequence[str]) -> tuple[str, ...]:
    """Return ids without repeats, first occurrence order kept."""
    return tuple(dict.fromkeys(ids))
