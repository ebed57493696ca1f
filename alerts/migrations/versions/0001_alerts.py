"""Rules engine tables: alerts, alert_history, alert_events, alert_engine_cursor.

Revision ID: alerts_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "alerts_0001"
down_revision = None
branch_labels = ("alerts",)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UtcTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("rule_version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(32), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("anchor_reading_id", sa.String(64), nullable=False),
        sa.Column("last_reading_id", sa.String(64), nullable=False),
        sa.Column("opened_at", UtcTime, nullable=False),
        sa.Column("updated_at", UtcTime, nullable=False),
        sa.Column("resolved_at", UtcTime, nullable=True),
        sa.Column("evidence", Json, nullable=False),
    )
    op.create_index(
        "ux_alerts_one_open", "alerts", ["patient_id", "rule_id", "subject"], unique=True,
        postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"),
    )  # fmt: skip
    op.create_index("ix_alerts_patient", "alerts", ["patient_id", "opened_at"])
    op.create_table(
        "alert_history",
        sa.Column("id", BigId, sa.Identity(always=False), primary_key=True),
        sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.alert_id"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("at", UtcTime, nullable=False),
        sa.Column("evidence", Json, nullable=False),
        sa.UniqueConstraint("alert_id", "revision", name="uq_alert_history_revision"),
    )
    op.create_table(
        "alert_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("occurred_at", UtcTime, nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=True),
        sa.Column("alert_id", sa.String(36), nullable=True),
        sa.Column("rule_id", sa.String(64), nullable=True),
        sa.Column("priority", sa.String(8), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
    )
    op.create_table(
        "alert_engine_cursor",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_reading_id", sa.BigInteger(), nullable=False),
        sa.Column("evaluated_at", UtcTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("alert_engine_cursor")
    op.drop_table("alert_events")
    op.drop_table("alert_history")
    op.drop_index("ix_alerts_patient", "alerts")
    op.drop_index("ux_alerts_one_open", "alerts")
    op.drop_table("alerts")
