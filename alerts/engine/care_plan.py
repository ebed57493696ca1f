"""The care plan file: per patient, the time zone, the conditions and rule overrides.

```json
{"pat-1": {"timezone": "Europe/Berlin",
           "conditions": ["diabetes", "http://snomed.info/sct|709044004"],
           "bp.home_esh_7d": {"min_readings": 10}}}
```

Keys with a dot are rule ids (`{param: value}`, see `alerts.rules.catalog.resolve_params`);
`timezone` is an IANA name (loaded here with `zoneinfo`, the one place that reads the time zone
database); `conditions` are codes (`alerts.rules.conditions`). A rule's `utc_offset_min`
stays available as an explicit fixed-offset override.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.engine.errors import EngineError
from alerts.engine.evaluate import PatientProfile
from alerts.engine.patients import StaticPatients
from alerts.rules.catalog import RULES_BY_ID, Overrides
from alerts.rules.conditions import normalize_all


class CarePlanError(EngineError, ValueError):
    """The care plan is unusable; names the patient and key when it can."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"care plan: {where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class CarePlan:
    """A parsed care plan: rule overrides and patient profiles."""

    overrides: Overrides
    profiles: Mapping[str, PatientProfile]

    def patients(self) -> StaticPatients:
        """The profiles as a `PatientDirectory`."""
        return StaticPatients(self.profiles)


EMPTY = CarePlan({}, {})


def parse_care_plan(data: object) -> CarePlan:
    """Validate a decoded care plan document.

    Raises:
        CarePlanError: not an object of objects, an unknown rule or key, a time zone that is
            not an IANA name, conditions that are not a list of strings.
    """
    if not isinstance(data, dict):
        raise CarePlanError("(document)", "must be {patient_id: {...}}")
    overrides: dict[str, dict[str, dict[str, float]]] = {}
    profiles: dict[str, PatientProfile] = {}
    for pid, entry in data.items():
        if not isinstance(entry, dict):
            raise CarePlanError(str(pid), "must be an object")
        zone = None
        conditions: frozenset[str] = frozenset()
        for key, value in entry.items():
            where = f"{pid}.{key}"
            if key == "timezone":
                zone = _zone(where, value)
            elif key == "conditions":
                if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
                    raise CarePlanError(where, "must be a list of condition codes")
                conditions = normalize_all(value)
            elif key in RULES_BY_ID:
                if not isinstance(value, dict):
                    raise CarePlanError(where, "must be {param: value}")
                overrides.setdefault(str(pid), {})[key] = value
            else:
                raise CarePlanError(where, "not a rule id, 'timezone' or 'conditions'")
        if zone is not None or conditions:
            profiles[str(pid)] = PatientProfile(zone, conditions)
    return CarePlan(overrides, profiles)


def _zone(where: str, value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise CarePlanError(where, "must be an IANA time zone name such as 'Asia/Shanghai'")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise CarePlanError(where, f"{value[:64]!r} is not an IANA time zone") from None


def load_care_plan(path: Path | None) -> CarePlan:
    """Read and parse a care plan file (None: an empty plan).

    Raises:
        CarePlanError: the file is missing, unreadable, not JSON or not a valid plan.
    """
    if path is None:
        return EMPTY
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CarePlanError(str(path), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CarePlanError(str(path), f"cannot be read ({exc.__class__.__name__})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CarePlanError(str(path), f"not JSON: {exc}") from None
    return parse_care_plan(data)
