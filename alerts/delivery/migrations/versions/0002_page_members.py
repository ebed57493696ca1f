"""Members to page, per team, on alert.escalated events.

Revision ID: d0002
Revises: d0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "d0002"
down_revision = "d0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add webhook_events.page_members (JSON text)."""
    op.add_column("webhook_events", sa.Column("page_members", sa.Text))


def downgrade() -> None:
    """Drop webhook_events.page_members."""
    op.drop_column("webhook_events", "page_members")
