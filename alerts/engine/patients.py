"""Where the engine learns each patient's time zone and care-plan conditions (a port).

The rules need two facts about a patient beyond the readings (`PatientProfile`): the IANA time
zone (protocol windows are in local time) and the coded conditions that change targets. Today
they come from the care plan file (`alerts.engine.care_plan`); the patient record will carry
them too. The engine reads them through `PatientDirectory`, so the composition root picks the
source (`Runner(patients_for=...)`) and `layered` lets explicit care-plan values override the
record's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from alerts.engine.evaluate import PatientProfile


class PatientDirectory(Protocol):
    """Profiles of the given patients (patients it does not know are left out)."""

    def profiles(self, patient_ids: Sequence[str]) -> Mapping[str, PatientProfile]:
        """See the class doc."""
        ...


class StaticPatients:
    """A `PatientDirectory` over profiles held in memory (a care plan)."""

    def __init__(self, profiles: Mapping[str, PatientProfile] | None = None) -> None:
        self._profiles = dict(profiles or {})

    def profiles(self, patient_ids: Sequence[str]) -> Mapping[str, PatientProfile]:
        """See `PatientDirectory`."""
        return {pid: self._profiles[pid] for pid in patient_ids if pid in self._profiles}


NO_PATIENTS = StaticPatients()


class Layered:
    """Profiles from `base`, with the time zone and conditions `overrides` sets replacing
    them (a care plan's explicit values over the record's)."""

    def __init__(self, base: PatientDirectory, overrides: PatientDirectory) -> None:
        self._base = base
        self._overrides = overrides

    def profiles(self, patient_ids: Sequence[str]) -> Mapping[str, PatientProfile]:
        """See `PatientDirectory`."""
        out = dict(self._base.profiles(patient_ids))
        for pid, top in self._overrides.profiles(patient_ids).items():
            below = out.get(pid, PatientProfile())
            out[pid] = replace(
                below,
                timezone=top.timezone if top.timezone is not None else below.timezone,
                conditions=top.conditions or below.conditions,
            )
        return out
