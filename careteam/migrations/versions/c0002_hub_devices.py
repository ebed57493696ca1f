"""The devices hubs report: `hub_devices`, `hub_device_patients`, `hub_device_events`.

Hubs report every pairing and unpairing (`hv.pairing/1`); a hub that paired devices before it
could report them sends one pairing event for each of them when it is upgraded, so the registry
fills in without anything to migrate here.

Revision ID: c0002
Revises: c0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the device registry's tables."""
    op.create_table(
        "hub_devices",
        sa.Column(
            "gateway_id", sa.String(64), sa.ForeignKey("gateways.gateway_id"), primary_key=True
        ),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("manufacturer", sa.String(64)),
        sa.Column("model", sa.String(64)),
        sa.Column("serial", sa.String(64)),
        sa.Column("firmware", sa.String(64)),
        _at("paired_at"),
        _at("unpaired_at", nullable=True),
        _at("updated_at"),
    )
    op.create_table(
        "hub_device_patients",
        sa.Column("gateway_id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column(
            "patient_id",
            sa.String(64),
            sa.ForeignKey("patient_records.patient_id"),
            primary_key=True,
        ),
        sa.Column("user_index", sa.Integer),
        sa.ForeignKeyConstraint(
            ["gateway_id", "device_id"], ["hub_devices.gateway_id", "hub_devices.device_id"]
        ),
    )
    op.create_index("ix_hub_device_patients_patient_id", "hub_device_patients", ["patient_id"])
    op.create_table(
        "hub_device_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("patient_ids", sa.Text, nullable=False),
        _at("at"),
        _at("received_at"),
        sa.UniqueConstraint("gateway_id", "event_id", name="uq_hub_device_events_event"),
    )


def downgrade() -> None:
    """Drop them."""
    op.drop_table("hub_device_events")
    op.drop_index("ix_hub_device_patients_patient_id", table_name="hub_device_patients")
    op.drop_table("hub_device_patients")
    op.drop_table("hub_devices")
