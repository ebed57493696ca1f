"""Scenarios as data: which devices, which patient, which physiology, how fast, which faults,
and which alerts the scenario must raise (pure: parsing and planning, no radio).

A scenario is a TOML file (the shipped ones are in `firmware_sims/scenarios/`, loaded by
`firmware_sims.scenario_files`)::

    name = "t1-hypo-week"
    seed = 7
    start = 2026-03-02T00:00:00Z
    days = 7
    time_acceleration = 86400.0        # simulated seconds per real second
    only_expected_alerts = true        # nothing else may fire
    [patient]
    id = "pat-t1-001"
    utc_offset_min = 60
    conditions = ["diabetes_type_1"]   # care-plan condition codes (targets: heart_failure, copd)
    [[devices]]
    model = "contour-like"             # firmware_sims.models.MODELS
    serial = "C7830H5000001"
    [devices.glucose]                  # physiology_glucose.GlucoseParams fields
    diabetes_type = "t1"
    [devices.faults]                   # faults.Faults fields
    disconnect_after_records = 3
    [[devices]]
    model = "cgm-like"                 # a CGM takes [devices.glucose] too: it records its own
    serial = "CGMS0001"                # trace every 5 min, its sensor session starting on
    sensor_start_day = 5               # this day (default 0)
    [[devices]]
    model = "scale-like"               # a scale takes [devices.weight] (physiology_vitals),
    serial = "WS01"                    # a thermometer [devices.temperature]; reading_hours are
    reading_hours = [7]                # the local hours it is used (scale: 7, thermometer 8, 20)
    [devices.weight]
    retention_days = [5]
    [[devices]]
    model = "oximeter-like"            # an oximeter takes [devices.spo2] (wearable_plans) and
    serial = "OX01"                    # [devices.heart_rate] (its pulse); spot-checks at
    reading_hours = [9, 21]            # reading_hours, its stream summarized per minute while
    stream_hours = [0, 6]              # worn (local from, to); a strap takes [heart_rate]
    [[expected_alerts]]
    rule = "glucose.hypo_l2"           # rule ids the rules engine uses
    min_count = 1

Every error names the offending key (`ScenarioError.field`, a dotted path).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from firmware_sims.errors import ScenarioError
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceKind, DeviceModel, get_model
from firmware_sims.physiology_bp import (
    BloodPressureParams,
    BloodPressureSample,
    plan_blood_pressure,
)
from firmware_sims.physiology_glucose import (
    DiabetesType,
    GlucoseParams,
    GlucoseSample,
    plan_glucose,
)
from firmware_sims.physiology_hr import HeartRateParams
from firmware_sims.physiology_vitals import TemperatureParams, WeightParams
from firmware_sims.wearable_plans import (
    SpO2Params,
    WearableSample,
    plan_cgm,
    plan_heart_rate,
    plan_oximeter,
    plan_temperature,
    plan_weight,
)

KNOWN_RULES = frozenset(
    {
        "glucose.hypo_l1",
        "glucose.hypo_l2",
        "glucose.hyper",
        "bp.home_aha_ama_2020",
        "bp.crisis",
        "bp.trend_14d",
        "spo2.low_sustained",
        "heart_rate.tachycardia_rest",
        "heart_rate.bradycardia_rest",
        "temperature.fever",
        "weight.gain_hf_3d",
        "cgm.tir_14d",
        "cgm.tbr_14d",
        "cgm.cv_14d",
    }
)
PlannedSample = GlucoseSample | BloodPressureSample | WearableSample
# Physiology tables each kind of device takes (besides `faults`).
_TABLES: dict[DeviceKind, tuple[str, ...]] = {
    DeviceKind.GLUCOSE_METER: ("glucose",),
    DeviceKind.CGM: ("glucose",),
    DeviceKind.BP_CUFF: ("blood_pressure",),
    DeviceKind.HEART_RATE_STRAP: ("heart_rate",),
    DeviceKind.PULSE_OXIMETER: ("spo2", "heart_rate"),
    DeviceKind.THERMOMETER: ("temperature",),
    DeviceKind.WEIGHT_SCALE: ("weight",),
}
_PARAMS: dict[str, type] = {
    "glucose": GlucoseParams,
    "blood_pressure": BloodPressureParams,
    "heart_rate": HeartRateParams,
    "spo2": SpO2Params,
    "temperature": TemperatureParams,
    "weight": WeightParams,
}
# Local hours a device is used at by default, and the hours a stream is worn (from, to).
_READING_HOURS: dict[DeviceKind, tuple[int, ...]] = {
    DeviceKind.THERMOMETER: (8, 20),
    DeviceKind.WEIGHT_SCALE: (7,),
}
_STREAM_HOURS: dict[DeviceKind, tuple[int, int]] = {DeviceKind.HEART_RATE_STRAP: (0, 24)}
_TOP_KEYS = {
    "name", "description", "seed", "start", "days", "time_acceleration", "patient",
    "devices", "expected_alerts", "only_expected_alerts",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ExpectedAlert:
    """An alert the scenario must raise, at least `min_count` episodes of it."""

    rule: str
    min_count: int = 1


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """One simulated device of a scenario."""

    model: DeviceModel
    serial: str
    address: str
    passkey: int
    faults: Faults
    glucose: GlucoseParams | None = None
    blood_pressure: BloodPressureParams | None = None
    sensor_start_day: int = 0  # a CGM's sensor session starts on this day of the scenario
    heart_rate: HeartRateParams | None = None  # a strap's heart, an oximeter's pulse
    spo2: SpO2Params | None = None
    temperature: TemperatureParams | None = None
    weight: WeightParams | None = None
    reading_hours: tuple[int, ...] = ()  # local hours a thermometer, scale or spot-check is used
    stream_hours: tuple[int, int] | None = None  # local (from, to) a strap or oximeter is worn


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario (see the module docstring)."""

    name: str
    description: str
    seed: int
    start_utc: datetime
    days: int
    time_acceleration: float
    patient_id: str
    utc_offset_min: int
    devices: tuple[DeviceSpec, ...]
    expected_alerts: tuple[ExpectedAlert, ...]
    only_expected_alerts: bool
    conditions: tuple[str, ...] = ()  # care-plan condition codes (heart_failure, copd, ...)

    def plan(self, index: int) -> list[PlannedSample]:
        """What device `index` will record, in time order (reproducible): a meter's or cuff's
        readings, a CGM's trace, a strap's or oximeter's minutes as the hub summarizes them
        while it is worn (and an oximeter's spot-checks), a thermometer's or scale's readings
        (`wearable_plans`)."""
        spec = self.devices[index]
        seed = self.seed * 1000 + index
        common: dict[str, Any] = {"seed": seed, "start_utc": self.start_utc, "days": self.days,
                  "utc_offset_min": self.utc_offset_min}  # fmt: skip
        kind = spec.model.kind
        out: list[PlannedSample] = []
        if kind is DeviceKind.CGM:
            assert spec.glucose is not None
            out += plan_cgm(
                spec.glucose, seed=seed,
                session_start_utc=self.start_utc + timedelta(days=spec.sensor_start_day),
                end_utc=self.start_utc + timedelta(days=self.days),
                utc_offset_min=self.utc_offset_min,
            )  # fmt: skip
        elif kind is DeviceKind.GLUCOSE_METER:
            assert spec.glucose is not None
            out += plan_glucose(spec.glucose, **common)
        elif kind is DeviceKind.BP_CUFF:
            assert spec.blood_pressure is not None
            out += plan_blood_pressure(spec.blood_pressure, **common)
        elif kind is DeviceKind.HEART_RATE_STRAP:
            assert spec.stream_hours is not None
            out += plan_heart_rate(
                spec.heart_rate or HeartRateParams(), stream_hours=spec.stream_hours, **common
            )
        elif kind is DeviceKind.PULSE_OXIMETER:
            out += plan_oximeter(
                spec.spo2 or SpO2Params(),
                spec.heart_rate or HeartRateParams(),
                stream_hours=spec.stream_hours,
                reading_hours=spec.reading_hours,
                **common,
            )
        elif kind is DeviceKind.THERMOMETER:
            out += plan_temperature(
                spec.temperature or TemperatureParams(),
                reading_hours=spec.reading_hours,
                **common,
            )
        else:
            out += plan_weight(spec.weight or WeightParams(), hour=spec.reading_hours[0], **common)
        return out


def address_for(serial: str) -> str:
    """A stable random static address for a serial (top two bits set, Core Vol 6 B 1.3.2.1)."""
    digest = bytearray(hashlib.sha256(serial.encode()).digest()[:6])
    digest[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in digest)


def _require(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in table:
        raise ScenarioError(f"{where}{key}", "is required")
    value = table[key]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise ScenarioError(f"{where}{key}", f"must be {getattr(kind, '__name__', kind)}")
    return value


def _numbers(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _hours(table: dict[str, Any], key: str, where: str, *, pair: bool) -> tuple[int, ...] | None:
    """A device's local hours (`reading_hours`: any number 0..23; `stream_hours`: from, to
    with 0..24), None when absent."""
    if key not in table:
        return None
    value = table[key]
    ok = isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= (24 if pair else 23)
        for v in value
    )
    if not ok or (pair and (len(value) != 2 or value[0] == value[1])) or not value:
        shape = "[from, to], hours 0..24" if pair else "a list of hours 0..23"
        raise ScenarioError(f"{where}{key}", f"must be {shape}")
    return tuple(value)


def _params(cls: type, table: Any, where: str) -> Any:
    if not isinstance(table, dict):
        raise ScenarioError(where, "must be a table")
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in table.items():
        value = raw
        if key not in known:
            raise ScenarioError(f"{where}.{key}", f"unknown parameter (known: {sorted(known)})")
        default = getattr(cls(), key)
        if (
            isinstance(default, tuple)
            and isinstance(value, list)
            and value
            and all(isinstance(v, list) for v in value)
        ):  # windows: [[start_s, end_s(, level)], ...]
            if not all(_numbers(v) and 2 <= len(v) <= 3 for v in value):
                raise ScenarioError(f"{where}.{key}", "must be a list of [start, end(, level)]")
            value = tuple(tuple(float(x) for x in v) for v in value)
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value
            ):
                raise ScenarioError(f"{where}.{key}", "must be a list of integers")
            value = tuple(value)
        elif isinstance(default, DiabetesType):
            try:
                value = DiabetesType(value)
            except ValueError:
                raise ScenarioError(f"{where}.{key}", "must be 't1' or 't2'") from None
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ScenarioError(f"{where}.{key}", "must be a number")
            value = float(value)
        elif isinstance(default, int) and (isinstance(value, bool) or not isinstance(value, int)):
            raise ScenarioError(f"{where}.{key}", "must be an integer")
        values[key] = value
    try:
        return cls(**values)
    except ScenarioError as exc:
        raise ScenarioError(f"{where}.{exc.field.split('.')[-1]}", exc.reason) from None


def _device(table: Any, index: int) -> DeviceSpec:
    where = f"devices[{index}]."
    if not isinstance(table, dict):
        raise ScenarioError(f"devices[{index}]", "must be a table")
    keys = {"model", "serial", "address", "passkey", "faults", "sensor_start_day",
            "reading_hours", "stream_hours", *_PARAMS}  # fmt: skip
    unknown = set(table) - keys
    if unknown:
        raise ScenarioError(f"{where}{sorted(unknown)[0]}", "unknown key")
    model = get_model(_require(table, "model", str, where), where=f"{where}model")
    serial = _require(table, "serial", str, where)
    passkey = table.get("passkey", 123456)
    if isinstance(passkey, bool) or not isinstance(passkey, int) or not 0 <= passkey <= 999_999:
        raise ScenarioError(f"{where}passkey", "must be an integer 0..999999")
    faults = Faults.from_mapping(table.get("faults", {}), where=f"{where}faults")
    takes = _TABLES[model.kind]
    for name in _PARAMS:
        if name in table and name not in takes:
            wanted = " and ".join(f"[{t}]" for t in takes)
            raise ScenarioError(f"{where}{name}", f"a {model.kind.value} takes {wanted}")
    params = {name: _params(_PARAMS[name], table.get(name, {}), f"{where}{name}")
              for name in takes}  # fmt: skip
    reading = _hours(table, "reading_hours", where, pair=False)
    stream = _hours(table, "stream_hours", where, pair=True)
    if reading is not None and model.kind not in (
        DeviceKind.THERMOMETER, DeviceKind.WEIGHT_SCALE, DeviceKind.PULSE_OXIMETER
    ):  # fmt: skip
        raise ScenarioError(f"{where}reading_hours", "for a thermometer, scale or oximeter")
    if stream is not None and model.kind not in (
        DeviceKind.HEART_RATE_STRAP, DeviceKind.PULSE_OXIMETER
    ):  # fmt: skip
        raise ScenarioError(f"{where}stream_hours", "for a strap or an oximeter")
    start_day = table.get("sensor_start_day", 0)
    if (
        isinstance(start_day, bool)
        or not isinstance(start_day, int)
        or start_day < 0
        or (start_day and model.kind is not DeviceKind.CGM)
    ):
        raise ScenarioError(f"{where}sensor_start_day", "a day number >= 0, for a CGM only")
    address = table.get("address", address_for(serial))
    if not isinstance(address, str) or len(address.split(":")) != 6:
        raise ScenarioError(f"{where}address", "must look like C1:02:03:04:05:06")
    return DeviceSpec(
        model, serial, address.upper(), passkey, faults,
        glucose=params.get("glucose"), blood_pressure=params.get("blood_pressure"),
        sensor_start_day=start_day, heart_rate=params.get("heart_rate"),
        spo2=params.get("spo2"), temperature=params.get("temperature"),
        weight=params.get("weight"),
        reading_hours=reading if reading is not None else _READING_HOURS.get(model.kind, ()),
        stream_hours=(stream[0], stream[1]) if stream else _STREAM_HOURS.get(model.kind),
    )  # fmt: skip


def parse_scenario(text: str, *, source: str = "<scenario>") -> Scenario:
    """Parse a scenario's TOML text.

    Raises:
        ScenarioError: invalid TOML, or a missing, unknown or invalid key (named).
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError("<toml>", str(exc), source=source) from exc
    try:
        return _parse(data)
    except ScenarioError as exc:
        raise ScenarioError(exc.field, exc.reason, source=source) from None


def _parse(data: dict[str, Any]) -> Scenario:
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ScenarioError(sorted(unknown)[0], "unknown key")
    start = _require(data, "start", datetime, "")
    if start.tzinfo is None:
        raise ScenarioError("start", "needs a UTC offset, e.g. 2026-03-02T00:00:00Z")
    days = _require(data, "days", int, "")
    if not 1 <= days <= 366:
        raise ScenarioError("days", "must be 1..366")
    acceleration = float(_require(data, "time_acceleration", (int, float), ""))
    if acceleration <= 0:
        raise ScenarioError("time_acceleration", "must be > 0")
    patient = _require(data, "patient", dict, "")
    offset = patient.get("utc_offset_min", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or not -720 <= offset <= 840:
        raise ScenarioError("patient.utc_offset_min", "must be an integer -720..840")
    conditions = patient.get("conditions", [])
    if not isinstance(conditions, list) or not all(
        isinstance(c, str) and c.replace("_", "").isalnum() for c in conditions
    ):
        raise ScenarioError("patient.conditions", "must be a list of condition codes")
    unknown_patient = set(patient) - {"id", "utc_offset_min", "conditions"}
    if unknown_patient:
        raise ScenarioError(f"patient.{sorted(unknown_patient)[0]}", "unknown key")
    devices = _require(data, "devices", list, "")
    if not devices:
        raise ScenarioError("devices", "needs at least one device")
    specs = tuple(_device(d, i) for i, d in enumerate(devices))
    if len({s.address for s in specs}) != len(specs):
        raise ScenarioError("devices", "two devices share an address")
    alerts = []
    for i, alert in enumerate(data.get("expected_alerts", [])):
        rule = _require(alert, "rule", str, f"expected_alerts[{i}].")
        if rule not in KNOWN_RULES:
            raise ScenarioError(f"expected_alerts[{i}].rule", f"unknown rule {rule!r}")
        count = alert.get("min_count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ScenarioError(f"expected_alerts[{i}].min_count", "must be an integer >= 1")
        alerts.append(ExpectedAlert(rule, count))
    only = data.get("only_expected_alerts", True)
    if not isinstance(only, bool):
        raise ScenarioError("only_expected_alerts", "must be true or false")
    return Scenario(
        name=_require(data, "name", str, ""),
        description=str(data.get("description", "")),
        seed=_require(data, "seed", int, ""),
        start_utc=start.astimezone(UTC),
        days=days,
        time_acceleration=acceleration,
        patient_id=_require(patient, "id", str, "patient."),
        utc_offset_min=offset,
        devices=specs,
        expected_alerts=tuple(alerts),
        only_expected_alerts=only,
        conditions=tuple(conditions),
    )
