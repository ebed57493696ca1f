"""The care-team record: adopt delivery's care-team tables, add patients, enrolment, consent, audit.

Databases made before the record had its own package have `institutions`, `care_teams`,
`care_team_members`, `care_team_patients`, `webhook_endpoints` and `webhook_endpoint_secrets`
from delivery's revision d0001: they are adopted as they are (created here only when missing).
Every patient a team already followed gets a patient record (time zone UTC until a care team
sets it) and, so that alerts keep reaching the teams that got them before consent was recorded,
a grant of ``alerts`` only with method ``migrated`` (listed by ``homevitals consent list``, to
be confirmed with the patient or withdrawn).

Revision ID: c0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from careteam.tables import UtcDateTime

revision = "c0001"
down_revision = None
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str = "id") -> sa.Column[str]:
    return sa.Column(name, sa.String(64), primary_key=True)


def _adopt_or_create_team_tables(existing: set[str]) -> None:
    if "institutions" not in existing:
        op.create_table(
            "institutions",
            _id(),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("kind", sa.String(40), nullable=False),
            _at("created_at"),
        )
    if "care_teams" not in existing:
        op.create_table(
            "care_teams",
            _id(),
            sa.Column(
                "institution_id", sa.String(64), sa.ForeignKey("institutions.id"), nullable=False
            ),
            sa.Column("name", sa.String(200), nullable=False),
            _at("created_at"),
        )
    if "care_team_members" not in existing:
        op.create_table(
            "care_team_members",
            _id(),
            sa.Column("team_id", sa.String(64), sa.ForeignKey("care_teams.id"), nullable=False),
            sa.Column("display_name", sa.String(200), nullable=False),
            sa.Column("role", sa.String(40), nullable=False),
            sa.Column("escalation_tier", sa.Integer, nullable=False),
            sa.Column("active", sa.Boolean, nullable=False),
            _at("created_at"),
        )
        op.create_index("ix_care_team_members_team_id", "care_team_members", ["team_id"])
    if "care_team_patients" not in existing:
        op.create_table(
            "care_team_patients",
            sa.Column("team_id", sa.String(64), sa.ForeignKey("care_teams.id"), primary_key=True),
            sa.Column("patient_id", sa.String(64), primary_key=True),
            sa.Column("escalation_tier", sa.Integer, nullable=False),
            _at("assigned_at"),
        )
        op.create_index("ix_care_team_patients_patient_id", "care_team_patients", ["patient_id"])
    if "webhook_endpoints" not in existing:
        op.create_table(
            "webhook_endpoints",
            _id(),
            sa.Column("team_id", sa.String(64), sa.ForeignKey("care_teams.id"), nullable=False),
            sa.Column("url", sa.Text, nullable=False),
            sa.Column("event_types", sa.Text, nullable=False),
            sa.Column("escalation_tier", sa.Integer, nullable=False),
            sa.Column("enabled", sa.Boolean, nullable=False),
            sa.Column("disabled_reason", sa.Text),
            _at("disabled_at", nullable=True),
            _at("failing_since", nullable=True),
            sa.Column("description", sa.String(200), nullable=False),
            _at("created_at"),
        )
        op.create_index("ix_webhook_endpoints_team_id", "webhook_endpoints", ["team_id"])
    if "webhook_endpoint_secrets" not in existing:
        op.create_table(
            "webhook_endpoint_secrets",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(
                "endpoint_id",
                sa.String(64),
                sa.ForeignKey("webhook_endpoints.id"),
                nullable=False,
            ),
            sa.Column("secret", sa.Text, nullable=False),
            _at("created_at"),
            _at("expires_at", nullable=True),
        )
        op.create_index(
            "ix_webhook_endpoint_secrets_endpoint_id", "webhook_endpoint_secrets", ["endpoint_id"]
        )


def _create_record_tables() -> None:
    op.create_table(
        "patient_records",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("short_name", sa.String(40), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("conditions", sa.Text, nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "gateways",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("mqtt_username", sa.String(64), nullable=False),
        _at("enrolled_at"),
        _at("revoked_at", nullable=True),
        sa.Column("revoked_by", sa.String(64)),
    )
    op.create_table(
        "gateway_patients",
        sa.Column(
            "gateway_id", sa.String(64), sa.ForeignKey("gateways.gateway_id"), primary_key=True
        ),
        sa.Column(
            "patient_id",
            sa.String(64),
            sa.ForeignKey("patient_records.patient_id"),
            primary_key=True,
        ),
        _at("enrolled_at"),
        _at("revoked_at", nullable=True),
    )
    op.create_table(
        "enrolment_codes",
        _id(),
        sa.Column("code_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("patient_ids", sa.Text, nullable=False),
        sa.Column("gateway_id", sa.String(64)),
        _at("created_at"),
        sa.Column("created_by", sa.String(64), nullable=False),
        _at("expires_at"),
        _at("used_at", nullable=True),
        sa.Column("used_by_gateway", sa.String(64)),
    )
    op.create_table(
        "enrolment_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        _at("at"),
        sa.Column("ok", sa.Boolean, nullable=False),
    )
    op.create_index("ix_enrolment_attempts_source", "enrolment_attempts", ["source"])
    op.create_index("ix_enrolment_attempts_at", "enrolment_attempts", ["at"])
    op.create_table(
        "consents",
        _id(),
        sa.Column(
            "patient_id",
            sa.String(64),
            sa.ForeignKey("patient_records.patient_id"),
            nullable=False,
        ),
        sa.Column("grantee_kind", sa.String(16), nullable=False),
        sa.Column("grantee_id", sa.String(64), nullable=False),
        sa.Column("data_kinds", sa.Text, nullable=False),
        _at("period_start"),
        _at("period_end", nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        _at("recorded_at"),
        sa.Column("status", sa.String(16), nullable=False),
        _at("withdrawn_at", nullable=True),
        sa.Column("withdrawn_by", sa.String(64)),
        sa.Column("withdraw_reason", sa.Text),
    )
    op.create_table(
        "audit_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=False,
        ),
        _at("recorded_at"),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("entity_kind", sa.String(32)),
        sa.Column("entity_id", sa.String(64)),
        sa.Column("data_kind", sa.String(32)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200)),
        sa.Column("purpose", sa.String(200)),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("hash", name="uq_audit_log_hash"),
    )
    op.create_index("ix_audit_log_patient_id", "audit_log", ["patient_id"])


def _backfill(conn: sa.Connection) -> None:
    """Patient records and alerts-only `migrated` grants for what teams already followed."""
    now = datetime.now(UTC)
    rows = conn.execute(
        sa.text("SELECT team_id, patient_id, assigned_at FROM care_team_patients").columns(
            sa.column("team_id"), sa.column("patient_id"), sa.column("assigned_at", UtcDateTime())
        )
    ).all()
    patients = sorted({r.patient_id for r in rows})
    records = sa.table(
        "patient_records",
        *(
            sa.column(n)
            for n in (
                "patient_id",
                "display_name",
                "short_name",
                "timezone",
                "conditions",
                "language",
                "active",
                "created_by",
            )
        ),
        sa.column("created_at", UtcDateTime()),
    )
    consents = sa.table(
        "consents",
        *(
            sa.column(n)
            for n in (
                "id",
                "patient_id",
                "grantee_kind",
                "grantee_id",
                "data_kinds",
                "method",
                "recorded_by",
                "status",
            )
        ),
        sa.column("period_start", UtcDateTime()),
        sa.column("recorded_at", UtcDateTime()),
    )
    for pid in patients:
        conn.execute(
            records.insert().values(
                patient_id=pid,
                display_name=pid,
                short_name=pid[:40],
                timezone="UTC",
                conditions="",
                language="en",
                active=True,
                created_at=now,
                created_by="migration",
            )
        )
    for r in rows:
        conn.execute(
            consents.insert().values(
                id=str(uuid.uuid4()),
                patient_id=r.patient_id,
                grantee_kind="team",
                grantee_id=r.team_id,
                data_kinds="alerts",
                period_start=r.assigned_at,
                method="migrated",
                recorded_by="migration",
                recorded_at=now,
                status="active",
            )
        )


def upgrade() -> None:
    """Adopt or create the care-team tables, create the record's new tables, backfill."""
    conn = op.get_bind()
    existing = set(sa.inspect(conn).get_table_names())
    _adopt_or_create_team_tables(existing)
    _create_record_tables()
    _backfill(conn)


def downgrade() -> None:
    """Drop the record's new tables (the adopted care-team tables stay: delivery had them)."""
    for name in (
        "audit_log",
        "consents",
        "enrolment_attempts",
        "enrolment_codes",
        "gateway_patients",
        "gateways",
        "patient_records",
    ):
        op.drop_table(name)
