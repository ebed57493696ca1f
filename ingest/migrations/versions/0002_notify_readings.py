"""PostgreSQL: announce committed readings on the `hv_readings` channel (LISTEN/NOTIFY).

A statement-level trigger NOTIFYs inside the writing transaction, so listeners (the rules
engine) are woken when the batch commits, and never for a batch that rolled back. The
notification carries no data; listeners read from their cursor. SQLite: nothing (polling).

Revision ID: ingest_0002
Revises: ingest_0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "ingest_0002"
down_revision = "ingest_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the notifying function and trigger (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION hv_notify_readings() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('hv_readings', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER readings_notify AFTER INSERT ON readings "
        "FOR EACH STATEMENT EXECUTE FUNCTION hv_notify_readings()"
    )


def downgrade() -> None:
    """Drop the trigger and its function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS readings_notify ON readings")
    op.execute("DROP FUNCTION IF EXISTS hv_notify_readings()")
