"""Hub facts for the data-freshness findings: hub status and device contacts.

Revision ID: ingest_0003
Revises: ingest_0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ingest_0003"
down_revision = "ingest_0002"
branch_labels = None
depends_on = None

UtcTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hub_status",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status_at", UtcTime, nullable=True),
        sa.Column("heartbeat_at", UtcTime, nullable=True),
    )
    op.create_table(
        "device_contacts",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("paired_at", UtcTime, nullable=False),
        sa.Column("last_contact_at", UtcTime, nullable=True),
        sa.Column("reported_at", UtcTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("device_contacts")
    op.drop_table("hub_status")
