"""A clinician's acknowledgements and resolutions of alerts, with notes.

Revision ID: d0004
Revises: d0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d0004"
down_revision = "d0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create alert_actions."""
    op.create_table(
        "alert_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(200)),
    )
    op.create_index("ix_alert_actions_alert", "alert_actions", ["alert_id", "id"])


def downgrade() -> None:
    """Drop alert_actions."""
    op.drop_index("ix_alert_actions_alert", table_name="alert_actions")
    op.drop_table("alert_actions")
