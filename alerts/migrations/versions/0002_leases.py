"""Scale-out of the engine: patient partitions leased to workers, and the workers' heartbeats.

Creates `alert_engine_leases` with one row per partition (64, `alerts.engine.partitions`),
unowned, and `alert_engine_workers`.

Revision ID: alerts_0002
Revises: alerts_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "alerts_0002"
down_revision = "alerts_0001"
branch_labels = None
depends_on = None

PARTITIONS = 64  # alerts.engine.partitions.PARTITIONS when this revision was written
UtcTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the lease and worker tables and the unowned partitions."""
    leases = op.create_table(
        "alert_engine_leases",
        sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UtcTime, nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("last_reading_id", sa.BigInteger(), nullable=True),
    )
    op.bulk_insert(leases, [{"partition": k, "epoch": 0} for k in range(PARTITIONS)])
    op.create_table(
        "alert_engine_workers",
        sa.Column("worker_id", sa.String(128), primary_key=True),
        sa.Column("seen_until", UtcTime, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("alert_engine_workers")
    op.drop_table("alert_engine_leases")
