"""Writes and reads of the care-team record (adapter over SQLAlchemy Core).

Every function takes the caller's connection and joins its transaction; ids are generated when
not given. Webhook URLs pass the SSRF guard at registration (static checks and resolution); the
delivery worker checks them again before every send.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from alerts.careteams.tables import (
    INSTITUTION_KINDS,
    MEMBER_ROLES,
    care_team_members,
    care_team_patients,
    care_teams,
    institutions,
    webhook_endpoint_secrets,
    webhook_endpoints,
)
from alerts.delivery import guard, signing
from alerts.delivery.errors import InvalidFieldError, NotFoundError
from alerts.delivery.ssrf import SsrfPolicy
from alerts.events import EventType

MAX_TIER = 9
DEFAULT_ROTATION_OVERLAP = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RegisteredEndpoint:
    """A new endpoint and its first signing secret (shown to the care team once)."""

    endpoint_id: str
    secret: str


def _text(field: str, value: str, max_len: int = 200) -> str:
    value = value.strip()
    if not value or len(value) > max_len:
        raise InvalidFieldError(field, f"must be 1 to {max_len} characters")
    return value


def _tier(value: int) -> int:
    if not 0 <= value <= MAX_TIER:
        raise InvalidFieldError("escalation_tier", f"must be 0 to {MAX_TIER}, got {value}")
    return value


def _exists(conn: sa.Connection, table: sa.Table, field: str, key: str) -> None:
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
    _exists(conn, institutions, "institution_id", institution_id)
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
    _exists(conn, care_teams, "team_id", team_id)
    if role not in MEMBER_ROLES:
        raise InvalidFieldError("role", f"must be one of {', '.join(MEMBER_ROLES)}")
    new_id = str(uuid.uuid4())
    conn.execute(
        care_team_members.insert().values(
            id=new_id,
            team_id=team_id,
            display_name=_text("display_name", display_name),
            role=role,
            escalation_tier=_tier(tier),
            active=True,
            created_at=at,
        )
    )
    return new_id


def assign_patient(
    conn: sa.Connection, team_id: str, patient_id: str, at: datetime, tier: int = 0
) -> None:
    """Make a team follow a patient at an escalation tier (0 = primary); idempotent.

    Raises:
        NotFoundError: unknown team. InvalidFieldError: bad patient id or tier.
    """
    _exists(conn, care_teams, "team_id", team_id)
    patient_id = _text("patient_id", patient_id, 64)
    conn.execute(
        sa.delete(care_team_patients).where(
            care_team_patients.c.team_id == team_id, care_team_patients.c.patient_id == patient_id
        )
    )
    conn.execute(
        care_team_patients.insert().values(
            team_id=team_id, patient_id=patient_id, escalation_tier=_tier(tier), assigned_at=at
        )
    )


def parse_event_types(values: Iterable[str]) -> tuple[EventType, ...]:
    """Validate the event types an endpoint subscribes to.

    Raises:
        InvalidFieldError: none given, or an unknown type (field ``"event_types"``).
    """
    wanted: list[EventType] = []
    for value in values:
        try:
            kind = EventType(value)
        except ValueError as exc:
            known = ", ".join(t.value for t in EventType)
            raise InvalidFieldError("event_types", f"{value!r} is not one of {known}") from exc
        if kind not in wanted:
            wanted.append(kind)
    if not wanted:
        raise InvalidFieldError("event_types", "subscribe to at least one event type")
    return tuple(wanted)


def register_endpoint(
    conn: sa.Connection,
    team_id: str,
    url: str,
    event_types: Sequence[str],
    *,
    at: datetime,
    policy: SsrfPolicy,
    resolver: guard.Resolver = guard.system_resolver,
    tier: int = 0,
    description: str = "webhook",
) -> RegisteredEndpoint:
    """Register a webhook endpoint for a team and create its first secret.

    Raises:
        NotFoundError: unknown team. UnsafeUrlError: the SSRF guard refuses the URL.
        InvalidFieldError: unknown event type, bad tier or description.
    """
    _exists(conn, care_teams, "team_id", team_id)
    types = parse_event_types(event_types)
    target, approved = guard.resolve(url, policy, resolver)
    endpoint_id = str(uuid.uuid4())
    guard.audit_allowed(endpoint_id, target, approved, "registration")
    conn.execute(
        webhook_endpoints.insert().values(
            id=endpoint_id,
            team_id=team_id,
            url=url,
            event_types=" ".join(t.value for t in types),
            escalation_tier=_tier(tier),
            enabled=True,
            description=_text("description", description),
            created_at=at,
        )
    )
    secret = signing.new_secret()
    conn.execute(
        webhook_endpoint_secrets.insert().values(
            endpoint_id=endpoint_id, secret=secret, created_at=at
        )
    )
    return RegisteredEndpoint(endpoint_id, secret)


def rotate_secret(
    conn: sa.Connection,
    endpoint_id: str,
    at: datetime,
    overlap: timedelta = DEFAULT_ROTATION_OVERLAP,
) -> str:
    """Add a new secret; the current ones keep signing until `at + overlap`, then stop.

    Raises:
        NotFoundError: unknown endpoint. InvalidFieldError: negative overlap.
    """
    if overlap < timedelta(0):
        raise InvalidFieldError("overlap", "must not be negative")
    _exists(conn, webhook_endpoints, "endpoint_id", endpoint_id)
    s = webhook_endpoint_secrets.c
    conn.execute(
        sa.update(webhook_endpoint_secrets)
        .where(
            s.endpoint_id == endpoint_id,
            sa.or_(s.expires_at.is_(None), s.expires_at > at + overlap),
        )
        .values(expires_at=at + overlap)
    )
    secret = signing.new_secret()
    conn.execute(
        webhook_endpoint_secrets.insert().values(
            endpoint_id=endpoint_id, secret=secret, created_at=at
        )
    )
    return secret


def active_secrets(conn: sa.Connection, endpoint_id: str, at: datetime) -> list[str]:
    """The secrets that sign a message sent at `at`, newest first."""
    s = webhook_endpoint_secrets.c
    rows = conn.execute(
        sa.select(s.secret)
        .where(s.endpoint_id == endpoint_id, sa.or_(s.expires_at.is_(None), s.expires_at > at))
        .order_by(s.id.desc())
    )
    return [row.secret for row in rows]


def set_endpoint_enabled(
    conn: sa.Connection, endpoint_id: str, enabled: bool, at: datetime, reason: str | None = None
) -> None:
    """Enable (clearing the failure state) or disable an endpoint.

    Raises:
        NotFoundError: unknown endpoint.
    """
    _exists(conn, webhook_endpoints, "endpoint_id", endpoint_id)
    values: dict[str, object] = (
        {"enabled": True, "disabled_reason": None, "disabled_at": None, "failing_since": None}
        if enabled
        else {"enabled": False, "disabled_reason": reason or "disabled", "disabled_at": at}
    )
    conn.execute(
        sa.update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )
