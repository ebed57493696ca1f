"""The canonical reading: what every part of homevitals agrees a measurement is.

A `Reading` is built by the gateway from decoded characteristics, travels as JSON over MQTT,
and is validated again by ingest before it becomes part of the record of truth. The JSON form
is published as a JSON Schema (`devices/schema/reading.v1.json`); `reading_from_json` applies
the same rules (and a few the schema cannot express, such as the `reading_id` check) and names
the offending field in a `ReadingValidationError`.

`reading_id` is a UUIDv5 over the device's identity, the kind, the device's sequence number and
the raw device time as sent. The same stored record fetched twice, by any gateway, gets the same
id; that id is the dedupe key end to end. It never includes the BLE address (which rotates) nor
anything the gateway computes (clock corrections, receive times).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from devices.errors import ReadingValidationError
from devices.special import Special

SCHEMA_ID: Final = "hv.reading/1"

# Namespaces for the UUIDv5 derivations. Changing either re-keys every stored reading.
READING_NAMESPACE: Final = uuid.UUID("6f1c3f0e-8c1a-5d7e-9a55-3b1d2c0e4a61")
DEVICE_NAMESPACE: Final = uuid.UUID("0b6b1a7e-2f4d-5c3a-8e11-7d9f6a2b5c40")

_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_TEXT_MAX: Final = 64
_EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
_FUTURE_SLACK: Final = timedelta(days=1)


class Kind(StrEnum):
    """What a reading measures."""

    GLUCOSE = "glucose"
    KETONE = "ketone"
    BLOOD_PRESSURE = "blood_pressure"
    HEART_RATE = "heart_rate"
    SPO2 = "spo2"
    BODY_TEMPERATURE = "body_temperature"
    BODY_WEIGHT = "body_weight"
    CGM_GLUCOSE = "cgm_glucose"  # interstitial glucose from a continuous monitor


_KIND_BY_VALUE: Final[Mapping[object, Kind]] = {k.value: k for k in Kind}
_KIND_TEXT: Final[Mapping[Kind, str]] = {k: k.value for k in Kind}

# Value names per kind, in canonical units, with the physical range a plausible value must fall
# in (inclusive). Ranges are deliberately wide: they reject corruption, not illness.
VALUE_RANGES: Final[Mapping[Kind, Mapping[str, tuple[float, float]]]] = {
    Kind.GLUCOSE: {"glucose_mmol_l": (0.0, 100.0)},
    Kind.KETONE: {"ketone_mmol_l": (0.0, 30.0)},
    Kind.BLOOD_PRESSURE: {
        "systolic_mmhg": (0.0, 400.0),
        "diastolic_mmhg": (0.0, 300.0),
        "mean_arterial_mmhg": (0.0, 350.0),
        "pulse_per_min": (0.0, 350.0),
    },
    # A stream reduced at the hub to one reading per minute: the mean, the lowest and highest
    # sample and how many samples the minute had. A single measurement has the first only.
    Kind.HEART_RATE: {
        "heart_rate_per_min": (0.0, 350.0),
        "heart_rate_lowest_per_min": (0.0, 350.0),
        "heart_rate_highest_per_min": (0.0, 350.0),
        "sample_count": (1.0, 1_000_000.0),
    },
    Kind.SPO2: {
        "spo2_pct": (0.0, 100.0),
        "spo2_lowest_pct": (0.0, 100.0),
        "spo2_highest_pct": (0.0, 100.0),
        "pulse_per_min": (0.0, 350.0),
        "sample_count": (1.0, 1_000_000.0),
    },
    Kind.BODY_TEMPERATURE: {"body_temperature_c": (20.0, 50.0)},
    Kind.BODY_WEIGHT: {"body_weight_kg": (0.0, 700.0)},
    Kind.CGM_GLUCOSE: {
        "glucose_mmol_l": (0.0, 100.0),
        "glucose_trend_mmol_l_min": (-10.0, 10.0),
        "sensor_quality_pct": (0.0, 100.0),
    },
}

# The value every reading of a kind must carry.
PRIMARY_VALUE: Final[Mapping[Kind, tuple[str, ...]]] = {
    Kind.GLUCOSE: ("glucose_mmol_l",),
    Kind.KETONE: ("ketone_mmol_l",),
    Kind.BLOOD_PRESSURE: ("systolic_mmhg", "diastolic_mmhg"),
    Kind.HEART_RATE: ("heart_rate_per_min",),
    Kind.SPO2: ("spo2_pct",),
    Kind.BODY_TEMPERATURE: ("body_temperature_c",),
    Kind.BODY_WEIGHT: ("body_weight_kg",),
    Kind.CGM_GLUCOSE: ("glucose_mmol_l",),
}

# Status flags with a meaning the rest of the system relies on. Other flags are allowed
# (open set, snake_case) and kept.
CONTROL_SOLUTION: Final = "control_solution"

Value = float | Special
ContextValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Who made the reading: stable identity from Device Information, never the BLE address."""

    id: str
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


@dataclass(frozen=True, slots=True)
class OriginalValue:
    """A value exactly as the device reported it, before unit conversion."""

    name: str
    value: Value
    unit: str


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement, in canonical units, with its provenance.

    Times: `measured_at` is UTC and clock-corrected by the gateway; `device_time` is the
    device's own time stamp exactly as sent (naive ISO 8601, the device's idea of local or base
    time), `device_time_offset_min` the Time Offset the device sent with it, and
    `clock_offset_s` the gateway's estimate of (device clock - gateway clock) for the session.
    """

    reading_id: str
    patient_id: str
    gateway_id: str
    device: DeviceInfo
    kind: Kind
    measured_at: datetime
    received_at: datetime
    values: Mapping[str, Value]
    sequence: int | None = None
    device_time: str | None = None
    device_time_offset_min: int | None = None
    clock_offset_s: float | None = None
    original: tuple[OriginalValue, ...] = ()
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    status: tuple[str, ...] = ()

    @property
    def is_control_solution(self) -> bool:
        """True for control-solution results, which are kept but never reach clinical rules."""
        return CONTROL_SOLUTION in self.status


def device_id_for(
    *,
    manufacturer: str | None,
    model: str | None,
    serial: str | None = None,
    system_id: bytes | None = None,
) -> str:
    """Derive a device's stable pseudonymous id from its Device Information.

    The serial number (with manufacturer and model, since serials are only unique per vendor)
    is preferred; the 8-byte System ID (0x2A23) is used when there is no serial.

    Raises:
        ValueError: neither a serial number nor a system id was given.
    """
    if serial:
        name = f"serial|{manufacturer or ''}|{model or ''}|{serial}"
    elif system_id:
        name = f"system_id|{system_id.hex()}"
    else:
        raise ValueError("a device needs a serial number or a system id to be identified")
    return str(uuid.uuid5(DEVICE_NAMESPACE, name))


def reading_id_for(
    *, device_id: str, kind: Kind | str, sequence: int | None, device_time: str | None
) -> str:
    """Derive the reading id: UUIDv5 over device identity, kind, sequence and raw device time."""
    seq = "-" if sequence is None else str(sequence)
    kind_value = _KIND_TEXT.get(kind) if type(kind) is Kind else None
    if kind_value is None:
        kind_value = Kind(kind).value
    name = f"{device_id}|{kind_value}|{seq}|{device_time or '-'}"
    return _uuid5(READING_NAMESPACE, name)


def _uuid5(namespace: uuid.UUID, name: str) -> str:
    """`str(uuid.uuid5(namespace, name))` without building UUID objects (ingest's hot path)."""
    ns = _NAMESPACE_BYTES.get(namespace)
    if ns is None:
        ns = namespace.bytes
    h = hashlib.sha1(ns + name.encode(), usedforsecurity=False).hexdigest()
    # Hex digit 12 is the version nibble (5); digit 16 keeps its low two bits under the
    # RFC 4122 variant bits 10.
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_NAMESPACE_BYTES: Final = {READING_NAMESPACE: READING_NAMESPACE.bytes}
_VARIANT: Final = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


# ---------------------------------------------------------------------------------------------
# JSON form


def _value_to_json(value: Value) -> float | str:
    return value.value if isinstance(value, Special) else value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reading_to_json(reading: Reading) -> dict[str, object]:
    """Return the JSON-ready dict of a reading (the published schema's form)."""
    device: dict[str, object] = {"id": reading.device.id}
    for name in ("manufacturer", "model", "serial", "firmware"):
        attr = getattr(reading.device, name)
        if attr is not None:
            device[name] = attr
    out: dict[str, object] = {
        "schema": SCHEMA_ID,
        "reading_id": reading.reading_id,
        "patient_id": reading.patient_id,
        "gateway_id": reading.gateway_id,
        "device": device,
        "kind": reading.kind.value,
        "measured_at": _iso(reading.measured_at),
        "received_at": _iso(reading.received_at),
        "sequence": reading.sequence,
        "device_time": reading.device_time,
        "device_time_offset_min": reading.device_time_offset_min,
        "clock_offset_s": reading.clock_offset_s,
        "values": {k: _value_to_json(v) for k, v in reading.values.items()},
        "original": [
            {"name": o.name, "value": _value_to_json(o.value), "unit": o.unit}
            for o in reading.original
        ],
        "context": dict(reading.context),
        "status": list(reading.status),
    }
    return out


_REQUIRED: Final = (
    "schema",
    "reading_id",
    "patient_id",
    "gateway_id",
    "device",
    "kind",
    "measured_at",
    "received_at",
    "values",
)
_OPTIONAL: Final = (
    "sequence",
    "device_time",
    "device_time_offset_min",
    "clock_offset_s",
    "original",
    "context",
    "status",
)
_REQUIRED_SET: Final = frozenset(_REQUIRED)
_KNOWN: Final = frozenset(_REQUIRED) | frozenset(_OPTIONAL)
_DEVICE_KEYS: Final = ("id", "manufacturer", "model", "serial", "firmware")
_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f]")
_DEVICE_TIME_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def _fail(path: str, reason: str) -> ReadingValidationError:
    return ReadingValidationError(path, reason)


def _identifier(obj: Mapping[Any, object], key: str, path: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise _fail(path, "must be 1-64 characters of A-Z a-z 0-9 . _ : - (starting alphanumeric)")
    return value


def _text(value: object, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _TEXT_MAX:
        raise _fail(path, f"must be a non-empty string of at most {_TEXT_MAX} characters")
    if _CONTROL_RE.search(value):
        raise _fail(path, "must not contain control characters")
    return value


def _int(value: object, path: str, lo: int, hi: int, *, nullable: bool = True) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, "must be an integer")
    if not lo <= value <= hi:
        raise _fail(path, f"must be between {lo} and {hi}")
    return value


def _number(value: object, path: str) -> Value:
    if isinstance(value, str):
        try:
            return Special(value)
        except ValueError:
            raise _fail(path, f"must be a number or one of {[s.value for s in Special]}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "must be a number or a special value string")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(path, "must be finite (use a special value string for NaN or infinity)")
    return number


def _utc(value: object, path: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _fail(path, "must be an ISO 8601 date-time string with a UTC offset")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(path, "is not an ISO 8601 date-time") from None
    tzinfo = moment.tzinfo
    if tzinfo is UTC:  # "Z" or "+00:00": already what astimezone(UTC) would return
        return moment
    if tzinfo is None or moment.utcoffset() is None:
        raise _fail(path, "must carry a time zone (Z or +00:00)")
    return moment.astimezone(UTC)


def _device(value: object) -> DeviceInfo:
    if not isinstance(value, dict):
        raise _fail("device", "must be an object")
    # A batch repeats the same device object for every reading: validate each distinct one once.
    try:
        key = tuple(value.items())
        return _device_cached(key)
    except TypeError:  # unhashable values: validate uncached to get the precise error
        return _device_uncached(value)


@functools.lru_cache(maxsize=256)
def _device_cached(items: tuple[tuple[object, object], ...]) -> DeviceInfo:
    return _device_uncached(dict(items))


def _device_uncached(value: dict[object, object]) -> DeviceInfo:
    for key in value:
        if key not in _DEVICE_KEYS:
            raise _fail(f"device.{key}", "is not a known field")
    dev_id = _identifier(value, "id", "device.id")
    return DeviceInfo(
        id=dev_id,
        manufacturer=_text(value.get("manufacturer"), "device.manufacturer"),
        model=_text(value.get("model"), "device.model"),
        serial=_text(value.get("serial"), "device.serial"),
        firmware=_text(value.get("firmware"), "device.firmware"),
    )


def _values(value: object, kind: Kind) -> dict[str, Value]:
    if not isinstance(value, dict):
        raise _fail("values", "must be an object")
    ranges = VALUE_RANGES[kind]
    out: dict[str, Value] = {}
    for name, raw in value.items():
        path = f"values.{name}"
        if name not in ranges:
            raise _fail(path, f"is not a value of kind {kind.value}")
        number = _number(raw, path)
        if isinstance(number, float):
            lo, hi = ranges[name]
            if not lo <= number <= hi:
                raise _fail(path, f"{number} is outside the physical range {lo}..{hi}")
        out[name] = number
    for name in PRIMARY_VALUE[kind]:
        if name not in out:
            raise _fail(f"values.{name}", f"is required for kind {kind.value}")
    return out


def _original(value: object) -> tuple[OriginalValue, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 16:
        raise _fail("original", "must be a list of at most 16 items")
    out = []
    for i, item in enumerate(value):
        path = f"original[{i}]"
        if not isinstance(item, dict) or set(item) != {"name", "value", "unit"}:
            raise _fail(path, "must be an object with exactly name, value and unit")
        name = item["name"]
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise _fail(f"{path}.name", "must be a snake_case name")
        unit = _text(item["unit"], f"{path}.unit")
        assert unit is not None  # _text returns None only for None, which set() excluded
        out.append(OriginalValue(name, _number(item["value"], f"{path}.value"), unit))
    return tuple(out)


def _context(value: object) -> dict[str, ContextValue]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 32:
        raise _fail("context", "must be an object of at most 32 entries")
    out: dict[str, ContextValue] = {}
    for key, item in value.items():
        path = f"context.{key}"
        if not isinstance(key, str) or not _NAME_RE.fullmatch(key):
            raise _fail(path, "key must be a snake_case name")
        if isinstance(item, str):
            out[key] = _text(item, path) or ""
        elif isinstance(item, bool | int):
            out[key] = item
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _fail(path, "must be finite")
            out[key] = item
        else:
            raise _fail(path, "must be a string, number or boolean")
    return out


def _status(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 32:
        raise _fail("status", "must be a list of at most 32 flags")
    for i, flag in enumerate(value):
        if not isinstance(flag, str) or not _NAME_RE.fullmatch(flag):
            raise _fail(f"status[{i}]", "must be a snake_case flag name")
    if len(set(value)) != len(value):
        raise _fail("status", "must not repeat a flag")
    return tuple(value)


def reading_from_json(obj: object, *, now: datetime | None = None) -> Reading:
    """Validate untrusted JSON (already parsed) into a `Reading`.

    `now`, when given, bounds `measured_at` and `received_at` to at most a day in the future.

    Raises:
        ReadingValidationError: naming the first offending field.
    """
    if not isinstance(obj, dict):
        raise _fail("$", "must be a JSON object")
    keys = obj.keys()
    if not keys <= _KNOWN:
        raise _fail(str(next(k for k in obj if k not in _KNOWN)), "is not a known field")
    if not keys >= _REQUIRED_SET:
        raise _fail(next(k for k in _REQUIRED if k not in obj), "is required")
    if obj["schema"] != SCHEMA_ID:
        raise _fail("schema", f"must be {SCHEMA_ID!r}")
    try:
        kind = _KIND_BY_VALUE[obj["kind"]]
    except (KeyError, TypeError):  # TypeError: an unhashable value (a list or an object)
        raise _fail("kind", f"must be one of {[k.value for k in Kind]}") from None
    device = _device(obj["device"])
    sequence = _int(obj.get("sequence"), "sequence", 0, 0xFFFF_FFFF)
    device_time = obj.get("device_time")
    if device_time is not None and (
        not isinstance(device_time, str) or not _DEVICE_TIME_RE.fullmatch(device_time)
    ):
        raise _fail("device_time", "must be a naive ISO 8601 date-time YYYY-MM-DDTHH:MM:SS")
    offset = _int(obj.get("device_time_offset_min"), "device_time_offset_min", -32768, 32767)
    clock = obj.get("clock_offset_s")
    if clock is not None:
        clock_num = _number(clock, "clock_offset_s")
        if isinstance(clock_num, Special) or abs(clock_num) > 20 * 365 * 86400:
            raise _fail("clock_offset_s", "must be a finite number of seconds within 20 years")
        clock = clock_num
    measured_at = _utc(obj["measured_at"], "measured_at")
    received_at = _utc(obj["received_at"], "received_at")
    for name, moment in (("measured_at", measured_at), ("received_at", received_at)):
        if moment < _EARLIEST:
            raise _fail(name, "is before 2000-01-01")
        if now is not None and moment > now + _FUTURE_SLACK:
            raise _fail(name, "is more than a day in the future")
    reading_id = obj["reading_id"]
    if not isinstance(reading_id, str):
        raise _fail("reading_id", "must be a UUID string")
    expected = reading_id_for(
        device_id=device.id,
        kind=kind,
        sequence=sequence,
        device_time=device_time if isinstance(device_time, str) else None,
    )
    if reading_id != expected:
        raise _fail("reading_id", "does not match the device, kind, sequence and device time")
    return Reading(
        reading_id=reading_id,
        patient_id=_identifier(obj, "patient_id", "patient_id"),
        gateway_id=_identifier(obj, "gateway_id", "gateway_id"),
        device=device,
        kind=kind,
        measured_at=measured_at,
        received_at=received_at,
        values=_values(obj["values"], kind),
        sequence=sequence,
        device_time=device_time if isinstance(device_time, str) else None,
        device_time_offset_min=offset,
        clock_offset_s=clock if isinstance(clock, float) else None,
        original=_original(obj.get("original")),
        context=_context(obj.get("context")),
        status=_status(obj.get("status")),
    )
