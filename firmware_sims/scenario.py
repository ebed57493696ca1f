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
    [[devices]]
    model = "contour-like"             # firmware_sims.models.MODELS
    serial = "C7830H5000001"
    [devices.glucose]                  # physiology_glucose.GlucoseParams fields
    diabetes_type = "t1"
    [devices.faults]                   # faults.Faults fields
    disconnect_after_records = 3
    [[devices]]
    model = "cgm-like"                 # a CGM takes [devices.glucose] too: it records its own
    serial = "CGMS0001"                # trace every 5 min (none planned here), its sensor
    sensor_start_day = 5               # session starting on this day (default 0)
    [[expected_alerts]]
    rule = "glucose.hypo_l2"           # rule ids the rules engine uses
    min_count = 1

Every error names the offending key (`ScenarioError.field`, a dotted path).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, fields
from datetime import UTC, datetime
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

KNOWN_RULES = frozenset(
    {
        "glucose.hypo_l1",
        "glucose.hypo_l2",
        "glucose.hyper",
        "bp.home_aha_ama_2020",
        "bp.crisis",
        "bp.trend_14d",
    }
)
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

    def plan(self, index: int) -> list[GlucoseSample] | list[BloodPressureSample]:
        """The readings device `index` will take, in time order (reproducible)."""
        spec = self.devices[index]
        seed = self.seed * 1000 + index
        kwargs = {
            "seed": seed,
            "start_utc": self.start_utc,
            "days": self.days,
            "utc_offset_min": self.utc_offset_min,
        }
        if spec.model.kind is DeviceKind.CGM:
            return []  # a CGM records its own trace every few minutes (`cgm_sensor`)
        if spec.glucose is not None:
            return plan_glucose(spec.glucose, **kwargs)  # type: ignore[arg-type]
        assert spec.blood_pressure is not None
        return plan_blood_pressure(spec.blood_pressure, **kwargs)  # type: ignore[arg-type]


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
        if isinstance(default, tuple):
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
    unknown = set(table) - {"model", "serial", "address", "passkey", "faults", "glucose",
                            "blood_pressure", "sensor_start_day"}  # fmt: skip
    if unknown:
        raise ScenarioError(f"{where}{sorted(unknown)[0]}", "unknown key")
    model = get_model(_require(table, "model", str, where), where=f"{where}model")
    serial = _require(table, "serial", str, where)
    passkey = table.get("passkey", 123456)
    if isinstance(passkey, bool) or not isinstance(passkey, int) or not 0 <= passkey <= 999_999:
        raise ScenarioError(f"{where}passkey", "must be an integer 0..999999")
    faults = Faults.from_mapping(table.get("faults", {}), where=f"{where}faults")
    glucose = bp = None
    if model.kind in (DeviceKind.GLUCOSE_METER, DeviceKind.CGM):
        if "blood_pressure" in table:
            raise ScenarioError(f"{where}blood_pressure", "a glucose device takes [glucose]")
        glucose = _params(GlucoseParams, table.get("glucose", {}), f"{where}glucose")
    elif model.kind is not DeviceKind.BP_CUFF:
        raise ScenarioError(f"{where}model", f"{model.kind.value} devices are not in scenarios yet")
    else:
        if "glucose" in table:
            raise ScenarioError(f"{where}glucose", "a cuff takes [blood_pressure]")
        bp = _params(BloodPressureParams, table.get("blood_pressure", {}), f"{where}blood_pressure")
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
    return DeviceSpec(model, serial, address.upper(), passkey, faults, glucose, bp, start_day)


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
    )
