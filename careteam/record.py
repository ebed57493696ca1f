"""Patients in the record, and readers of the record (adapter over SQLAlchemy Core).

Every function takes the caller's connection and joins its transaction; writes append their
audit entry in the same transaction. Readers return frozen values (`careteam.patients`,
`careteam.registry`), never rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from careteam import audit_store, patients
from careteam.audit import Actor
from careteam.errors import InvalidFieldError, NotFoundError
from careteam.patients import PatientCarePlan, PatientProfile
from careteam.tables import patient_records


def _profile(row: sa.Row[Any]) -> PatientProfile:
    return PatientProfile(
        patient_id=row.patient_id,
        display_name=row.display_name,
        short_name=row.short_name,
        timezone=row.timezone,
        conditions=tuple(row.conditions.split()),
        language=row.language,
        active=bool(row.active),
        created_at=row.created_at,
    )


def add_patient(
    conn: sa.Connection,
    *,
    patient_id: str,
    display_name: str,
    timezone: str,
    actor: Actor,
    at: datetime,
    conditions: Iterable[str] = (),
    language: str = "en",
    short_name: str | None = None,
) -> PatientProfile:
    """Register a patient (audited ``patient.register``).

    Raises:
        InvalidFieldError: a bad ``patient_id``, ``display_name``, ``short_name``,
            ``timezone`` (not an IANA zone), ``conditions`` (unknown code) or ``language``;
            ``patient_id`` already registered.
    """
    pid = patients.patient_id(patient_id)
    name = patients.text("display_name", display_name)
    short = patients.text("short_name", short_name or patients.short_name_from(name), 40)
    row = {
        "patient_id": pid,
        "display_name": name,
        "short_name": short,
        "timezone": patients.timezone(timezone),
        "conditions": " ".join(patients.validate_conditions(conditions)),
        "language": patients.language(language),
        "active": True,
        "created_at": at,
        "created_by": actor.id,
    }
    c = patient_records.c
    if conn.execute(sa.select(c.patient_id).where(c.patient_id == pid)).first() is not None:
        raise InvalidFieldError("patient_id", f"{pid!r} is already registered")
    conn.execute(patient_records.insert().values(**row))
    audit_store.append(
        conn,
        audit_store.record(
            actor, "patient.register", patient_id=pid, entity_kind="patient", entity_id=pid
        ),
        at,
    )
    return get_patient(conn, pid)


def update_care_plan(
    conn: sa.Connection,
    patient_id: str,
    *,
    actor: Actor,
    at: datetime,
    timezone: str | None = None,
    conditions: Iterable[str] | None = None,
) -> PatientProfile:
    """Change a patient's time zone and/or conditions (audited ``patient.update``).

    Raises:
        NotFoundError: unknown ``patient_id``. InvalidFieldError: ``timezone``, ``conditions``.
    """
    get_patient(conn, patient_id)
    values: dict[str, object] = {}
    if timezone is not None:
        values["timezone"] = patients.timezone(timezone)
    if conditions is not None:
        values["conditions"] = " ".join(patients.validate_conditions(conditions))
    if values:
        c = patient_records.c
        conn.execute(sa.update(patient_records).where(c.patient_id == patient_id).values(values))
        audit_store.append(
            conn,
            audit_store.record(
                actor,
                "patient.update",
                patient_id=patient_id,
                entity_kind="patient",
                entity_id=patient_id,
                detail={"changed": sorted(values)},
            ),
            at,
        )
    return get_patient(conn, patient_id)


def get_patient(conn: sa.Connection, patient_id: str) -> PatientProfile:
    """The patient's record.

    Raises:
        NotFoundError: field ``"patient_id"``.
    """
    c = patient_records.c
    row = conn.execute(sa.select(patient_records).where(c.patient_id == patient_id)).first()
    if row is None:
        raise NotFoundError("patient_id", patient_id)
    return _profile(row)


def require_patients(conn: sa.Connection, patient_ids: Sequence[str]) -> None:
    """Check that every id names an active patient.

    Raises:
        NotFoundError: the first unknown or inactive one (field ``"patient_id"``).
    """
    c = patient_records.c
    found = {
        r.patient_id
        for r in conn.execute(
            sa.select(c.patient_id).where(c.patient_id.in_(patient_ids), c.active.is_(True))
        )
    }
    for pid in patient_ids:
        if pid not in found:
            raise NotFoundError("patient_id", pid)


def list_patients(conn: sa.Connection) -> list[PatientProfile]:
    """Every patient, by id."""
    c = patient_records.c
    return [_profile(r) for r in conn.execute(sa.select(patient_records).order_by(c.patient_id))]


def care_plans(
    conn: sa.Connection, patient_ids: Iterable[str] | None = None
) -> dict[str, PatientCarePlan]:
    """Time zone (IANA) and condition codes per patient, for the rules engine.

    All patients when `patient_ids` is None; unknown ids are simply absent from the result.
    """
    c = patient_records.c
    stmt = sa.select(c.patient_id, c.timezone, c.conditions)
    if patient_ids is not None:
        stmt = stmt.where(c.patient_id.in_(list(patient_ids)))
    return {
        r.patient_id: PatientCarePlan(r.patient_id, r.timezone, tuple(r.conditions.split()))
        for r in conn.execute(stmt)
    }
