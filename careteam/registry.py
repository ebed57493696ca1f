"""Institutions, care teams, members and the patients teams follow (adapter, SQLAlchemy Core).

Every function takes the caller's connection and joins its transaction; ids are generated.
Webhook endpoints of a team are registered by delivery (`alerts.delivery.endpoints`), which
owns the SSRF guard and the event types.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from careteam.consent import Accessor
from careteam.errors import InvalidFieldError, NotFoundError
from careteam.patients import text as _text
from careteam.record import require_patients
from careteam.tables import (
    INSTITUTION_KINDS,
    MEMBER_ROLES,
    care_team_members,
    care_team_patients,
    care_teams,
    institutions,
)

MAX_TIER = 9


@dataclass(frozen=True, slots=True)
class Institution:
    """A hospital clinic, community health centre or family practice."""

    institution_id: str
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class Team:
    """A care team of an institution."""

    team_id: str
    institution_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a care team, paged at `escalation_tier`."""

    member_id: str
    team_id: str
    display_name: str
    role: str
    escalation_tier: int
    active: bool


@dataclass(frozen=True, slots=True)
class Following:
    """A team that follows a patient, at an escalation tier (0 = primary)."""

    team_id: str
    patient_id: str
    escalation_tier: int
    assigned_at: datetime


def check_tier(value: int) -> int:
    """Validate an escalation tier (0 to `MAX_TIER`).

    Raises:
        InvalidFieldError: field ``"escalation_tier"``.
    """
    if not 0 <= value <= MAX_TIER:
        raise InvalidFieldError("escalation_tier", f"must be 0 to {MAX_TIER}, got {value}")
    return value


def require_row(conn: sa.Connection, table: sa.Table, field: str, key: str) -> None:
    """Check that `table` has a row with id `key`.

    Raises:
        NotFoundError: naming `field`.
    """
    if conn.execute(sa.select(table.c.id).where(table.c.id == key)).first() is None:
        raise NotFoundError(field, key)


def add_institution(conn: sa.Connection, name: str, kind: str, at: datetime) -> str:
    """Record an institution (hospital clinic, community health centre, family practice).

    Raises:
        InvalidFieldError: empty name or unknown kind.
    """
    if kind not in INSTITUTION_KINDS:
        raise InvalidFieldError("kind", f"must be one of {', '.join(INSTITUTION_KINDS)}")
    new_id = str(uuid.uuid4())
    conn.execute(
        institutions.insert().values(id=new_id, name=_text("name", name), kind=kind, created_at=at)
    )
    return new_id


def add_team(conn: sa.Connection, institution_id: str, name: str, at: datetime) -> str:
    """Record a care team of an institution.

    Raises:
        NotFoundError: unknown institution. InvalidFieldError: empty name.
    """
    require_row(conn, institutions, "institution_id", institution_id)
    new_id = str(uuid.uuid4())
    conn.execute(
        care_teams.insert().values(
            id=new_id, institution_id=institution_id, name=_text("name", name), created_at=at
        )
    )
    return new_id


def add_member(
    conn: sa.Connection, team_id: str, display_name: str, *, role: str, tier: int, at: datetime
) -> str:
    """Record a member of a care team, with the escalation tier at which they are paged.

    Raises:
        NotFoundError: unknown team. InvalidFieldError: empty name, unknown role, bad tier.
    """
    require_row(conn, care_teams, "team_id", team_id)
    if role not in MEMBER_ROLES:
        raise InvalidFieldError("role", f"must be one of {', '.join(MEMBER_ROLES)}")
    new_id = str(uuid.uuid4())
    conn.execute(
        care_team_members.insert().values(
            id=new_id,
            team_id=team_id,
            display_name=_text("display_name", display_name),
            role=role,
            escalation_tier=check_tier(tier),
            active=True,
            created_at=at,
        )
    )
    return new_id


def assign_patient(
    conn: sa.Connection, team_id: str, patient_id: str, at: datetime, tier: int = 0
) -> None:
    """Make a team follow a patient at an escalation tier (0 = primary); idempotent.

    Following decides who is paged at which tier; what the team may see or receive is decided
    by the patient's consent grants (`careteam.consent_store`).

    Raises:
        NotFoundError: unknown team or patient (register the patient first).
        InvalidFieldError: bad tier.
    """
    require_row(conn, care_teams, "team_id", team_id)
    require_patients(conn, [patient_id])
    conn.execute(
        sa.delete(care_team_patients).where(
            care_team_patients.c.team_id == team_id, care_team_patients.c.patient_id == patient_id
        )
    )
    conn.execute(
        care_team_patients.insert().values(
            team_id=team_id, patient_id=patient_id, escalation_tier=check_tier(tier), assigned_at=at
        )
    )


def get_institution(conn: sa.Connection, institution_id: str) -> Institution:
    """An institution.

    Raises:
        NotFoundError: field ``"institution_id"``.
    """
    row = conn.execute(sa.select(institutions).where(institutions.c.id == institution_id)).first()
    if row is None:
        raise NotFoundError("institution_id", institution_id)
    return Institution(row.id, row.name, row.kind)


def get_team(conn: sa.Connection, team_id: str) -> Team:
    """A care team.

    Raises:
        NotFoundError: field ``"team_id"``.
    """
    row = conn.execute(sa.select(care_teams).where(care_teams.c.id == team_id)).first()
    if row is None:
        raise NotFoundError("team_id", team_id)
    return Team(row.id, row.institution_id, row.name)


def list_teams(conn: sa.Connection, institution_id: str | None = None) -> list[Team]:
    """Every team (of one institution when given), by name."""
    stmt = sa.select(care_teams).order_by(care_teams.c.name, care_teams.c.id)
    if institution_id is not None:
        stmt = stmt.where(care_teams.c.institution_id == institution_id)
    return [Team(r.id, r.institution_id, r.name) for r in conn.execute(stmt)]


def _member(row: sa.Row[Any]) -> Member:
    return Member(
        row.id, row.team_id, row.display_name, row.role, row.escalation_tier, bool(row.active)
    )


def get_member(conn: sa.Connection, member_id: str) -> Member:
    """A care-team member.

    Raises:
        NotFoundError: field ``"member_id"``.
    """
    m = care_team_members.c
    row = conn.execute(sa.select(care_team_members).where(m.id == member_id)).first()
    if row is None:
        raise NotFoundError("member_id", member_id)
    return _member(row)


def team_members(conn: sa.Connection, team_id: str) -> list[Member]:
    """The members of a team, by name."""
    m = care_team_members.c
    stmt = sa.select(care_team_members).where(m.team_id == team_id).order_by(m.display_name, m.id)
    return [_member(r) for r in conn.execute(stmt)]


def teams_following(conn: sa.Connection, patient_id: str) -> list[Following]:
    """The teams that follow a patient, by tier."""
    p = care_team_patients.c
    stmt = (
        sa.select(care_team_patients)
        .where(p.patient_id == patient_id)
        .order_by(p.escalation_tier, p.team_id)
    )
    return [
        Following(r.team_id, r.patient_id, r.escalation_tier, r.assigned_at)
        for r in conn.execute(stmt)
    ]


def accessor_for_team(conn: sa.Connection, team_id: str) -> Accessor:
    """The consent `Accessor` of a team (with its institution).

    Raises:
        NotFoundError: field ``"team_id"``.
    """
    team = get_team(conn, team_id)
    return Accessor(team.team_id, team.institution_id)


def accessor_for_member(conn: sa.Connection, member_id: str) -> Accessor:
    """The consent `Accessor` of a member (their team and its institution).

    Raises:
        NotFoundError: field ``"member_id"``.
    """
    member = get_member(conn, member_id)
    team = get_team(conn, member.team_id)
    return Accessor(team.team_id, team.institution_id, member.member_id)
