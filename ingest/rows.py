"""Pure mapping from validated readings and rejected payloads to record-store rows.

No I/O and no clock: the time a row is stored at is passed in. The column names are those of
`ingest.schema`; the typed numeric columns (`glucose_mmol_l`, `systolic_mmhg`, ...) hold the
canonical value when it is a number and NULL when it is absent or an IEEE 11073 special value
(which stays, as its JSON spelling, in the `values` document).
"""

from __future__ import annotations

import hashlib
import json
import json.encoder
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    return typed_number(values.get(name))


def typed_number(value: object) -> float | None:
    """A value for a typed column: a number as a float; None for a special value or nothing.

    Python ints are numbers too (``Reading(values={"systolic_mmhg": 140})`` type-checks, as
    mypy lets an int stand for a float): they used to become NULL here, so a stored reading
    was invisible to the rules and the dashboard. A bool is not a number.
    """
    if type(value) is float:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


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


# The `readings` columns (without the surrogate `id`) in the order `reading_copy_row` fills them.
COPY_COLUMNS: Final = (
    "reading_id",
    "patient_id",
    "gateway_id",
    "device_id",
    "kind",
    "measured_at",
    "received_at",
    "stored_at",
    "sequence",
    "device_time",
    "device_time_offset_min",
    "clock_offset_s",
    "glucose_mmol_l",
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_per_min",
    "meal",
    "control_solution",
    "status",
    "values",
    "original",
    "context",
)


def _json_encoder() -> Callable[[object], str]:
    """Compact JSON text, as ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``.

    `JSONEncoder.encode` builds a new C encoder on every call; on ingest's hot path (four JSON
    documents per reading) that set-up cost more than the encoding, so one is built once.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the standard encoder
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    iterencode = make(
        None, None, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode(obj: object) -> str:
        return "".join(iterencode(obj, 0))

    return encode


to_json: Final = _json_encoder()
_CACHE_MAX: Final = 4096


class CopyRows:
    """Maps validated readings to `readings` rows in `COPY_COLUMNS` order, JSON as text.

    The same document as `reading_row` (Special values spelled as their JSON strings, which
    is what a `Special` is as a `str`). Status and context documents repeat across readings
    (a meter's meal tag, no flags), so their JSON text is cached by content.
    """

    __slots__ = ("_context", "_status")

    def __init__(self) -> None:
        self._status: dict[tuple[str, ...], str] = {(): "[]"}
        # Keyed with each value's type: 1, 1.0 and True are equal but spelled differently.
        self._context: dict[tuple[tuple[str, type, object], ...], str] = {(): "{}"}

    def row(self, reading: Reading, *, stored_at: datetime | str) -> tuple[object, ...]:
        """Return the COPY row of a validated reading.

        `stored_at` may come as its COPY text already (`stored_at_text`): it is the same for
        every row of a batch, so it is formatted once.
        """
        values = reading.values
        context = reading.context
        meal = context.get("meal")
        status = reading.status
        status_json = self._status.get(status)
        if status_json is None:
            status_json = to_json(list(status))
            if len(self._status) < _CACHE_MAX:
                self._status[status] = status_json
        ctx_key = tuple((k, type(v), v) for k, v in context.items())
        context_json = self._context.get(ctx_key)
        if context_json is None:
            context_json = to_json(dict(context))
            if len(self._context) < _CACHE_MAX:
                self._context[ctx_key] = context_json
        glucose = values.get("glucose_mmol_l")
        systolic = values.get("systolic_mmhg")
        diastolic = values.get("diastolic_mmhg")
        pulse = values.get("pulse_per_min")
        original = reading.original
        return (
            reading.reading_id,
            reading.patient_id,
            reading.gateway_id,
            reading.device.id,
            reading.kind.value,
            reading.measured_at,
            reading.received_at,
            stored_at,
            reading.sequence,
            reading.device_time,
            reading.device_time_offset_min,
            reading.clock_offset_s,
            glucose if type(glucose) is float else typed_number(glucose),
            systolic if type(systolic) is float else typed_number(systolic),
            diastolic if type(diastolic) is float else typed_number(diastolic),
            pulse if type(pulse) is float else typed_number(pulse),
            meal if isinstance(meal, str) else None,
            CONTROL_SOLUTION in status,
            status_json,
            to_json(values if type(values) is dict else dict(values)),
            to_json(
                [{"name": o.name, "value": _json_value(o.value), "unit": o.unit} for o in original]
            )
            if original
            else "[]",
            context_json,
        )


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
