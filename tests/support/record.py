"""Care-team record set-ups for tests (real rows through the real careteam functions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from careteam import consent_store, record, registry
from careteam.audit import Actor
from careteam.consent import Grant, GrantRequest
from careteam.errors import NotFoundError

TEST_ACTOR = Actor("operator", "test-admin", source="test")
ALL_KINDS = ("glucose", "blood_pressure", "alerts", "devices")


def ensure_patient(
    conn: sa.Connection, patient_id: str, at: datetime, *, timezone: str = "UTC"
) -> None:
    """Register `patient_id` unless it is registered already."""
    try:
        record.get_patient(conn, patient_id)
    except NotFoundError:
        record.add_patient(
            conn,
            patient_id=patient_id,
            display_name=f"Patient {patient_id}",
            timezone=timezone,
            actor=TEST_ACTOR,
            at=at,
        )


def follow(
    conn: sa.Connection,
    team_id: str,
    patient_id: str,
    at: datetime,
    *,
    tier: int = 0,
    kinds: Sequence[str] = ALL_KINDS,
) -> Grant:
    """Register the patient if needed, make the team follow them and record a consent grant."""
    ensure_patient(conn, patient_id, at)
    registry.assign_patient(conn, team_id, patient_id, at, tier=tier)
    return consent_store.grant(
        conn,
        GrantRequest(patient_id, "team", team_id, tuple(kinds), at, None, "in_person"),
        actor=TEST_ACTOR,
        at=at,
    )
