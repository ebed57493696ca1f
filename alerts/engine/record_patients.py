"""`PatientDirectory` over the patient record (careteam's `patient_records`).

The record keeps each patient's IANA time zone and care-plan condition codes
(`careteam.record.care_plans`); this adapter loads the zones (`zoneinfo`) and keeps the
conditions that set rule targets (`alerts.rules.conditions`). A zone the system's time zone
data does not know is left out (the patient's protocols then use UTC), logged once per name.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from alerts.engine.evaluate import PatientProfile
from alerts.rules.conditions import normalize_all
from careteam.record import care_plans

log = logging.getLogger(__name__)

# Above this many patients one read of the whole table beats an IN list.
READ_ALL_ABOVE: Final = 1000


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("time zone %r of a patient record is unknown here; using UTC", name[:64])
        return None


class RecordPatients:
    """Profiles from the patient record, read on the caller's connection (the runner's step
    transaction)."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def profiles(self, patient_ids: Sequence[str]) -> Mapping[str, PatientProfile]:
        """See `alerts.engine.patients.PatientDirectory`.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the record could not be read.
        """
        if not patient_ids:
            return {}
        wanted = None if len(patient_ids) > READ_ALL_ABOVE else list(patient_ids)
        plans = care_plans(self._conn, wanted)
        out = {}
        for pid, plan in plans.items():
            zone = _zone(plan.timezone) if plan.timezone else None
            conditions = normalize_all(plan.conditions)
            if zone is not None or conditions:
                out[pid] = PatientProfile(zone, conditions)
        return out
