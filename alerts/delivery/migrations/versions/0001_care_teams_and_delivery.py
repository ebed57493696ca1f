"""Webhook delivery tables.

Until the care-team record became its own package this revision also created `institutions`,
`care_teams`, `care_team_members`, `care_team_patients`, `webhook_endpoints` and
`webhook_endpoint_secrets`; they now come from careteam's revision c0001 (run first by
`alerts.delivery.migrations.migrate`), which adopts them in databases made by the old form.

Revision ID: d0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "d0001"
down_revision = None
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the tables of webhook delivery (the record's tables exist already)."""
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        _at("occurred_at"),
        sa.Column("patient_id", sa.String(64)),
        sa.Column("alert_id", sa.String(64)),
        sa.Column("rule_id", sa.String(64)),
        sa.Column("priority", sa.String(10)),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("subject_id", sa.String(64)),
        sa.Column("tier", sa.Integer),
        _at("created_at"),
    )
    op.create_index("ix_webhook_events_alert_id", "webhook_events", ["alert_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id", sa.String(64), sa.ForeignKey("webhook_events.event_id"), nullable=False
        ),
        sa.Column(
            "endpoint_id", sa.String(64), sa.ForeignKey("webhook_endpoints.id"), nullable=False
        ),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        _at("next_attempt_at"),
        _at("lease_until", nullable=True),
        _at("created_at"),
        _at("delivered_at", nullable=True),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id", sa.Integer, sa.ForeignKey("webhook_deliveries.id"), nullable=False
        ),
        sa.Column("endpoint_id", sa.String(64), nullable=False),
        sa.Column("attempt_number", sa.Integer, nullable=False),
        _at("started_at"),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("status_code", sa.Integer),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("retry_after_s", sa.Float),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])
    op.create_index("ix_webhook_attempts_endpoint_id", "webhook_attempts", ["endpoint_id"])
    op.create_table(
        "alert_confirmations",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("priority", sa.String(10)),
        _at("opened_at"),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        _at("tier_since"),
        _at("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(64)),
        _at("resolved_at", nullable=True),
    )
    op.create_table(
        "webhook_event_quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _at("received_at"),
        sa.Column("event_id", sa.String(200)),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop every table this revision created, dependents first."""
    for name in (
        "webhook_event_quarantine",
        "alert_confirmations",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_events",
    ):
        op.drop_table(name)
