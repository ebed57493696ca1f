"""Care-team record set-ups for tests (real rows through the real careteam functions)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from careteam import consent_store, enrolment_store, record, registry
from careteam.audit import Actor
from careteam.consent import Grant, GrantRequest
from careteam.errors import NotFoundError
from devices.reading import Reading

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


def enrol(url_or_engine: str | sa.Engine, pairs: Iterable[tuple[str, str]]) -> None:
    """Migrate the record if needed, register each patient and enrol each (gateway, patient)
    pair the way an operator enrols a certificate hub (`enrolment_store.enrol_gateway`)."""
    from careteam.db import make_engine
    from careteam.migrations import migrate

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        migrate(engine)
        by_gateway: dict[str, set[str]] = {}
        for gateway_id, patient_id in pairs:
            by_gateway.setdefault(gateway_id, set()).add(patient_id)
        at = datetime.now(UTC)
        with engine.begin() as conn:
            for gateway_id, patients in sorted(by_gateway.items()):
                for patient_id in sorted(patients):
                    ensure_patient(conn, patient_id, at)
                enrolment_store.enrol_gateway(
                    conn, gateway_id, sorted(patients), actor=TEST_ACTOR, at=at
                )
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def enrol_readings(url_or_engine: str | sa.Engine, readings: Iterable[Reading]) -> None:
    """Enrol every (gateway, patient) pair that `readings` carry."""
    enrol(url_or_engine, {(r.gateway_id, r.patient_id) for r in readings})
