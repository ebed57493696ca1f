"""Raw stream samples on the wire: `hv/v1/gw/{gateway_id}/samples` (pure).

A strap or an oximeter sends about a sample a second. The hub publishes the per-minute summary
as a reading (outbox, receipts, record store, time series), and forwards the raw samples of the
same minute as one **sample batch** for the time series only: never the record store. The
envelope (`hv.samples/1`) is compact: the minute's start in milliseconds, each sample's offset
from it, and one array per value name (canonical units), e.g.::

    {"schema": "hv.samples/1", "gateway_id": "gw-1", "batches": [
      {"id": "<uuid>", "patient_id": "p-1", "device_id": "<uuid>", "kind": "heart_rate",
       "t0_ms": 1772352000000, "dt_ms": [412, 1411, ...],
       "values": {"heart_rate_per_min": [71, 72, ...], "rr_interval_s": [0.84, null, ...]}}]}

A batch's id is a UUIDv5 over device, kind and minute, so a resent batch has the same id (and
the time series keeps one point per series and millisecond). Ingest names the batches it wrote
(or quarantined) in the receipt's `sample_batches`; the hub resends the others until its
`sample_retention_s` ends. Decoding checks every field and value (`VALUE_RANGES` of the kind)
and raises `ReadingValidationError` naming the first bad one.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from devices.errors import ReadingValidationError
from devices.reading import VALUE_RANGES, Kind

SAMPLES_SCHEMA: Final = "hv.samples/1"
SAMPLE_BATCH_NAMESPACE: Final = uuid.UUID("3d4c2b1a-9e8f-5a6b-8c7d-0e1f2a3b4c5d")
STREAM_KINDS: Final = (Kind.HEART_RATE, Kind.SPO2)
# Sample values per stream kind besides the kind's own value names.
EXTRA_VALUES: Final[Mapping[Kind, Mapping[str, tuple[float, float]]]] = {
    Kind.HEART_RATE: {"rr_interval_s": (0.0, 10.0)},
}
MAX_SAMPLES: Final = 6000  # a minute at 100 Hz
MAX_BATCHES: Final = 500
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


def samples_topic(gateway_id: str) -> str:
    """Topic a gateway forwards its raw stream samples on."""
    return f"hv/v1/gw/{gateway_id}/samples"


def sample_batch_id(device_id: str, kind: Kind, t0_ms: int) -> str:
    """The id of a device's samples of one kind in the minute starting at `t0_ms`."""
    return str(uuid.uuid5(SAMPLE_BATCH_NAMESPACE, f"{device_id}|{kind.value}|{t0_ms}"))


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """One device's samples of one kind in one period (see the module docstring)."""

    batch_id: str
    patient_id: str
    device_id: str
    kind: Kind
    t0_ms: int
    dt_ms: tuple[int, ...]
    values: Mapping[str, tuple[float | None, ...]]

    @property
    def start(self) -> datetime:
        """The period's start (UTC)."""
        return datetime.fromtimestamp(self.t0_ms / 1000, UTC)


def value_names(kind: Kind) -> Mapping[str, tuple[float, float]]:
    """The value names (and plausible ranges) a sample of `kind` may carry."""
    return {**VALUE_RANGES[kind], **EXTRA_VALUES.get(kind, {})}


def _compact(value: float | None) -> float | int | None:
    """A whole number without its ".0" (a heart rate is whole: two bytes a sample saved)."""
    return int(value) if value is not None and value.is_integer() else value


def batch_to_json(batch: SampleBatch) -> dict[str, object]:
    """The JSON form of one batch (whole numbers written without a fraction)."""
    return {
        "id": batch.batch_id,
        "patient_id": batch.patient_id,
        "device_id": batch.device_id,
        "kind": batch.kind.value,
        "t0_ms": batch.t0_ms,
        "dt_ms": list(batch.dt_ms),
        "values": {name: [_compact(v) for v in column] for name, column in batch.values.items()},
    }


def encode_sample_batches(gateway_id: str, batches: Sequence[SampleBatch]) -> bytes:
    """Serialise batches into one `hv.samples/1` envelope."""
    return envelope_of(
        gateway_id, [json.dumps(batch_to_json(b), separators=(",", ":")) for b in batches]
    )


def envelope_of(gateway_id: str, batch_jsons: Sequence[str]) -> bytes:
    """An `hv.samples/1` envelope around batches already serialised (as the hub keeps them)."""
    head = json.dumps({"schema": SAMPLES_SCHEMA, "gateway_id": gateway_id},
                      separators=(",", ":"))  # fmt: skip
    return f'{head[:-1]},"batches":[{",".join(batch_jsons)}]}}'.encode()


def _fail(where: str, reason: str) -> ReadingValidationError:
    return ReadingValidationError(where, reason)


def _integers(value: object, where: str, lo: int, hi: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        type(v) is int and lo <= v <= hi for v in value
    ):  # fmt: skip
        raise _fail(where, f"must be a list of integers {lo}..{hi}")
    return tuple(value)


def batch_from_json(item: object, where: str) -> SampleBatch:
    """One batch from its JSON form.

    Raises:
        ReadingValidationError: a missing, unknown or bad field (named).
    """
    if not isinstance(item, dict):
        raise _fail(where, "must be an object")
    keys = {"id", "patient_id", "device_id", "kind", "t0_ms", "dt_ms", "values"}
    if set(item) != keys:
        odd = sorted(set(item) ^ keys)[0]
        raise _fail(f"{where}.{odd}", "unknown field" if odd in item else "missing")
    for name in ("patient_id", "device_id"):
        if not isinstance(item[name], str) or not _ID.match(item[name]):
            raise _fail(f"{where}.{name}", "must be an id (letters, digits, ._:-, 1-64)")
    try:
        kind = Kind(item["kind"])
    except ValueError:
        kind = None
    if kind not in STREAM_KINDS:
        raise _fail(f"{where}.kind", f"must be one of {[k.value for k in STREAM_KINDS]}")
    assert kind is not None
    t0 = item["t0_ms"]
    if type(t0) is not int or not 946_684_800_000 <= t0 < 4_102_444_800_000:
        raise _fail(f"{where}.t0_ms", "must be milliseconds since 1970, from 2000 to 2099")
    if item["id"] != sample_batch_id(item["device_id"], kind, t0):
        raise _fail(f"{where}.id", "is not the batch id of this device, kind and start")
    dt = _integers(item["dt_ms"], f"{where}.dt_ms", 0, 3_600_000)
    if not dt or len(dt) > MAX_SAMPLES or any(b < a for a, b in itertools.pairwise(dt)):
        raise _fail(f"{where}.dt_ms", f"must hold 1..{MAX_SAMPLES} offsets in time order")
    values = item["values"]
    allowed = value_names(kind)
    if not isinstance(values, dict) or not values:
        raise _fail(f"{where}.values", "must be an object of value arrays")
    columns: dict[str, tuple[float | None, ...]] = {}
    for name, column in values.items():
        at = f"{where}.values.{name}"
        if name not in allowed:
            raise _fail(at, f"not a value of {kind.value} samples")
        lo, hi = allowed[name]
        if not isinstance(column, list) or len(column) != len(dt):
            raise _fail(at, f"must hold {len(dt)} values, one per offset")
        for v in column:
            ok = v is None or (
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and lo <= v <= hi
            )  # fmt: skip
            if not ok:
                raise _fail(at, f"{v!r} is not a number in {lo:g}..{hi:g} (or null)")
        columns[name] = tuple(None if v is None else float(v) for v in column)
    return SampleBatch(item["id"], item["patient_id"], item["device_id"], kind, t0, dt, columns)


@dataclass(frozen=True, slots=True)
class RejectedBatch:
    """A batch that did not validate: its id if it had one, why, and its JSON as received."""

    batch_id: str | None
    error: ReadingValidationError
    raw: str


@dataclass(frozen=True, slots=True)
class SampleEnvelope:
    """A parsed envelope: the good batches and the rejected ones (one bad batch spoils only
    itself)."""

    batches: tuple[SampleBatch, ...]
    rejected: tuple[RejectedBatch, ...]


def decode_sample_batches(payload: bytes, *, topic_gateway_id: str) -> SampleEnvelope:
    """Parse an `hv.samples/1` envelope published on `topic_gateway_id`'s topic.

    Raises:
        ReadingValidationError: not JSON, a wrong schema or gateway, or no batch list.
    """
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail("$", f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("schema") != SAMPLES_SCHEMA:
        raise _fail("schema", f"must be {SAMPLES_SCHEMA!r}")
    if obj.get("gateway_id") != topic_gateway_id:
        raise _fail("gateway_id", "must be the gateway of the topic")
    batches = obj.get("batches")
    if not isinstance(batches, list) or not 1 <= len(batches) <= MAX_BATCHES:
        raise _fail("batches", f"must be a list of 1..{MAX_BATCHES} batches")
    good: list[SampleBatch] = []
    bad: list[RejectedBatch] = []
    for i, item in enumerate(batches):
        try:
            good.append(batch_from_json(item, f"batches[{i}]"))
        except ReadingValidationError as exc:
            raw_id = item.get("id") if isinstance(item, dict) else None
            batch_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
            bad.append(RejectedBatch(batch_id, exc, json.dumps(item, separators=(",", ":"))))
    return SampleEnvelope(tuple(good), tuple(bad))
