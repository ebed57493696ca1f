"""Alert fatigue: the episode's severity and what was last pushed; which revisions were pushed.

Revision ID: alerts_0003
Revises: alerts_0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts_0003"
down_revision = "alerts_0002"
branch_labels = None
depends_on = None

UtcTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("severity", sa.Float(), nullable=True))
        batch.add_column(sa.Column("notified_at", UtcTime, nullable=True))
        batch.add_column(sa.Column("notified_priority", sa.String(8), nullable=True))
        batch.add_column(sa.Column("notified_severity", sa.Float(), nullable=True))
    with op.batch_alter_table("alert_history") as batch:
        batch.add_column(
            sa.Column("pushed", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_history") as batch:
        batch.drop_column("pushed")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("notified_severity")
        batch.drop_column("notified_priority")
        batch.drop_column("notified_at")
        batch.drop_column("severity")
