"""Attributable acknowledgement: how and from where an alert was acknowledged; used links.

Revision ID: d0005
Revises: d0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d0005"
down_revision = "d0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add alert_confirmations.acknowledged_via/_source and the ack_link_uses table."""
    with op.batch_alter_table("alert_confirmations") as batch:
        batch.add_column(sa.Column("acknowledged_via", sa.String(64)))
        batch.add_column(sa.Column("acknowledged_source", sa.String(200)))
    op.create_table(
        "ack_link_uses",
        sa.Column("token_sha256", sa.String(64), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(200)),
    )


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("ack_link_uses")
    with op.batch_alter_table("alert_confirmations") as batch:
        batch.drop_column("acknowledged_source")
        batch.drop_column("acknowledged_via")
