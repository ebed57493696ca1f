"""Consent grants in the record (adapter): grant, withdraw, read, and decide with an audit entry.

`check` is what every read of patient data calls: the decision (`careteam.consent.decide`) plus
an audit entry (``data.read``, outcome success or denied, the Consent id in the detail) in the
caller's transaction. Withdrawal is effective for every decision taken after it commits; what
delivery had queued for the grantee is cancelled by delivery (`alerts.delivery.withdrawal`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from careteam import audit_store
from careteam.audit import Actor
from careteam.consent import (
    ACTIVE,
    INACTIVE,
    Accessor,
    Decision,
    Grant,
    GrantRequest,
    decide,
    validate_grant,
)
from careteam.errors import InvalidFieldError, NotFoundError
from careteam.record import require_patients
from careteam.registry import get_institution, get_team
from careteam.tables import care_teams, consents


def _grant(row: sa.Row[Any]) -> Grant:
    return Grant(
        consent_id=row.id,
        patient_id=row.patient_id,
        grantee_kind=row.grantee_kind,
        grantee_id=row.grantee_id,
        data_kinds=tuple(row.data_kinds.split()),
        period_start=row.period_start,
        period_end=row.period_end,
        method=row.method,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
        status=row.status,
        withdrawn_at=row.withdrawn_at,
    )


def grant(conn: sa.Connection, request: GrantRequest, *, actor: Actor, at: datetime) -> Grant:
    """Record a consent grant (audited ``consent.grant``).

    Raises:
        InvalidFieldError: see `careteam.consent.validate_grant`.
        NotFoundError: unknown ``patient_id``, ``team_id`` or ``institution_id`` (the grantee).
    """
    checked = validate_grant(request)
    require_patients(conn, [checked.patient_id])
    if checked.grantee_kind == "team":
        get_team(conn, checked.grantee_id)
    else:
        get_institution(conn, checked.grantee_id)
    consent_id = str(uuid.uuid4())
    conn.execute(
        consents.insert().values(
            id=consent_id,
            patient_id=checked.patient_id,
            grantee_kind=checked.grantee_kind,
            grantee_id=checked.grantee_id,
            data_kinds=" ".join(checked.data_kinds),
            period_start=checked.period_start,
            period_end=checked.period_end,
            method=checked.method,
            recorded_by=actor.id,
            recorded_at=at,
            status=ACTIVE,
        )
    )
    audit_store.append(
        conn,
        audit_store.record(
            actor,
            "consent.grant",
            patient_id=checked.patient_id,
            entity_kind="consent",
            entity_id=consent_id,
            detail={
                "grantee": f"{checked.grantee_kind}/{checked.grantee_id}",
                "data_kinds": list(checked.data_kinds),
                "method": checked.method,
            },
        ),
        at,
    )
    return get_grant(conn, consent_id)


def withdraw(
    conn: sa.Connection, consent_id: str, *, actor: Actor, at: datetime, reason: str
) -> Grant:
    """Withdraw a grant now (audited ``consent.withdraw``); a second withdrawal changes nothing.

    Raises:
        NotFoundError: field ``"consent_id"``. InvalidFieldError: empty ``reason``.
    """
    if not reason.strip():
        raise InvalidFieldError("reason", "say why the consent is withdrawn")
    current = get_grant(conn, consent_id)
    if current.status != ACTIVE:
        return current
    c = consents.c
    conn.execute(
        sa.update(consents)
        .where(c.id == consent_id)
        .values(status=INACTIVE, withdrawn_at=at, withdrawn_by=actor.id, withdraw_reason=reason)
    )
    audit_store.append(
        conn,
        audit_store.record(
            actor,
            "consent.withdraw",
            patient_id=current.patient_id,
            entity_kind="consent",
            entity_id=consent_id,
            detail={"grantee": f"{current.grantee_kind}/{current.grantee_id}"},
        ),
        at,
    )
    return get_grant(conn, consent_id)


def get_grant(conn: sa.Connection, consent_id: str) -> Grant:
    """One grant.

    Raises:
        NotFoundError: field ``"consent_id"``.
    """
    row = conn.execute(sa.select(consents).where(consents.c.id == consent_id)).first()
    if row is None:
        raise NotFoundError("consent_id", consent_id)
    return _grant(row)


def grants_for_patient(conn: sa.Connection, patient_id: str) -> list[Grant]:
    """Every grant of a patient (active and withdrawn), oldest first."""
    c = consents.c
    stmt = sa.select(consents).where(c.patient_id == patient_id).order_by(c.recorded_at, c.id)
    return [_grant(r) for r in conn.execute(stmt)]


def grants_for_team(conn: sa.Connection, team_id: str) -> list[Grant]:
    """Every grant naming a team or its institution, oldest first."""
    c, t = consents.c, care_teams.c
    institution = sa.select(t.institution_id).where(t.id == team_id).scalar_subquery()
    stmt = (
        sa.select(consents)
        .where(
            sa.or_(
                sa.and_(c.grantee_kind == "team", c.grantee_id == team_id),
                sa.and_(c.grantee_kind == "institution", c.grantee_id == institution),
            )
        )
        .order_by(c.recorded_at, c.id)
    )
    return [_grant(r) for r in conn.execute(stmt)]


def decide_for(
    conn: sa.Connection, who: Accessor, patient_id: str, data_kind: str, at: datetime
) -> Decision:
    """The consent decision for `who` (no audit entry: for checks that are not reads)."""
    return decide(grants_for_patient(conn, patient_id), who, patient_id, data_kind, at)


def check(
    conn: sa.Connection,
    who: Accessor,
    actor: Actor,
    *,
    patient_id: str,
    data_kind: str,
    at: datetime,
    entity_kind: str | None = None,
    entity_id: str | None = None,
) -> Decision:
    """Decide a read of patient data and audit it (``data.read``, success or denied).

    Call it in the transaction that performs the read; on a deny, read nothing and answer so.
    """
    decision = decide_for(conn, who, patient_id, data_kind, at)
    audit_store.append(
        conn,
        audit_store.record(
            actor,
            "data.read",
            outcome="success" if decision.permit else "denied",
            patient_id=patient_id,
            data_kind=data_kind,
            entity_kind=entity_kind,
            entity_id=entity_id,
            detail={
                "consent_id": decision.consent_id,
                "reason": decision.reason,
                "team_id": who.team_id,
            },
        ),
        at,
    )
    return decision
