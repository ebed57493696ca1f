"""PostgreSQL: announce pending deliveries on the `hv_deliveries` channel (LISTEN/NOTIFY).

A row trigger NOTIFYs when a delivery is inserted pending or set back to pending (a
redelivery), inside the writing transaction, so the delivery worker wakes when the engine's
transaction commits. Identical notifications of one transaction are folded into one by the
server. The notification carries no data. SQLite: nothing (the worker polls).

Revision ID: d0003
Revises: d0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "d0003"
down_revision = "d0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the notifying function and trigger (PostgreSQL only)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE OR REPLACE FUNCTION hv_notify_deliveries() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('hv_deliveries', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER webhook_deliveries_notify "
        "AFTER INSERT OR UPDATE OF status ON webhook_deliveries "
        "FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION hv_notify_deliveries()"
    )


def downgrade() -> None:
    """Drop the trigger and its function."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS webhook_deliveries_notify ON webhook_deliveries")
    op.execute("DROP FUNCTION IF EXISTS hv_notify_deliveries()")
