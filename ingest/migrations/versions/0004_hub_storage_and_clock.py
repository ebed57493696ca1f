"""Hub facts from the heartbeat: a full outbox and the hub's clock offset.

Revision ID: ingest_0004
Revises: ingest_0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest_0004"
down_revision = "ingest_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hub_status") as batch:
        batch.add_column(
            sa.Column("storage_full", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("clock_offset_s", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hub_status") as batch:
        batch.drop_column("clock_offset_s")
        batch.drop_column("storage_full")
