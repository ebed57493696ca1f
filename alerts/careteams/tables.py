"""Tables of the care-team record (SQLAlchemy Core; migrations in alerts/delivery/migrations).

`metadata` here also carries delivery's tables (alerts/delivery/tables.py): one Alembic
environment with its own version table (`alembic_version_delivery`) owns all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone, so values are stored as naive
    UTC and given back as aware UTC. Naive values are refused on the way in: a naive datetime
    here would be a bug (STYLE.md: times are aware UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


INSTITUTION_KINDS = ("hospital_clinic", "community_health_centre", "family_practice", "other")
MEMBER_ROLES = ("physician", "nurse", "pharmacist", "coordinator", "other")

institutions = Table(
    "institutions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

care_teams = Table(
    "care_teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("institution_id", String(64), ForeignKey("institutions.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

care_team_members = Table(
    "care_team_members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("team_id", String(64), ForeignKey("care_teams.id"), nullable=False, index=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    # 0 = paged first; 1 = paged when tier 0 did not acknowledge in time; ...
    Column("escalation_tier", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Until the consent model arrives (API issue), a team follows the patients it is assigned.
care_team_patients = Table(
    "care_team_patients",
    metadata,
    Column("team_id", String(64), ForeignKey("care_teams.id"), primary_key=True),
    Column("patient_id", String(64), primary_key=True, index=True),
    # The tier at which this team is engaged for this patient (another institution = 1...).
    Column("escalation_tier", Integer, nullable=False),
    Column("assigned_at", UtcDateTime(), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("team_id", String(64), ForeignKey("care_teams.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    # Space-separated event types (portable across SQLite and PostgreSQL).
    Column("event_types", Text, nullable=False),
    # Added to the team's tier for the patient: a supervisor's endpoint may sit one tier up.
    Column("escalation_tier", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("disabled_at", UtcDateTime()),
    Column("failing_since", UtcDateTime()),
    Column("description", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

webhook_endpoint_secrets = Table(
    "webhook_endpoint_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id", String(64), ForeignKey("webhook_endpoints.id"), nullable=False, index=True
    ),
    Column("secret", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Set when the secret is rotated out: it keeps signing until then (overlap).
    Column("expires_at", UtcDateTime()),
)
