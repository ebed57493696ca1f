"""Ingest's first tables: readings, patients, devices, quarantine, mirror cursors.

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "ingest_0001"
down_revision = None
branch_labels = ("ingest",)
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UtcTime = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "readings",
        sa.Column("id", BigId, sa.Identity(always=False), primary_key=True),
        sa.Column("reading_id", sa.String(36), nullable=False, unique=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("measured_at", UtcTime, nullable=False),
        sa.Column("received_at", UtcTime, nullable=False),
        sa.Column("stored_at", UtcTime, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=True),
        sa.Column("device_time", sa.String(19), nullable=True),
        sa.Column("device_time_offset_min", sa.Integer(), nullable=True),
        sa.Column("clock_offset_s", sa.Float(), nullable=True),
        sa.Column("glucose_mmol_l", sa.Float(), nullable=True),
        sa.Column("systolic_mmhg", sa.Float(), nullable=True),
        sa.Column("diastolic_mmhg", sa.Float(), nullable=True),
        sa.Column("pulse_per_min", sa.Float(), nullable=True),
        sa.Column("meal", sa.String(64), nullable=True),
        sa.Column("control_solution", sa.Boolean(), nullable=False),
        sa.Column("status", Json, nullable=False),
        sa.Column("values", Json, nullable=False),
        sa.Column("original", Json, nullable=False),
        sa.Column("context", Json, nullable=False),
    )
    op.create_index(
        "ix_readings_patient_kind_time", "readings", ["patient_id", "kind", "measured_at"]
    )
    op.create_table(
        "patients",
        sa.Column("patient_id", sa.String(64), primary_key=True),
        sa.Column("first_seen_at", UtcTime, nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(64), primary_key=True),
        sa.Column("manufacturer", sa.String(64), nullable=True),
        sa.Column("model", sa.String(64), nullable=True),
        sa.Column("serial", sa.String(64), nullable=True),
        sa.Column("firmware", sa.String(64), nullable=True),
        sa.Column("first_seen_at", UtcTime, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", BigId, sa.Identity(always=False), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("received_at", UtcTime, nullable=False),
        sa.Column("topic", sa.String(256), nullable=False),
        sa.Column("gateway_id", sa.String(64), nullable=True),
        sa.Column("reading_id", sa.String(64), nullable=True),
        sa.Column("item_index", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "mirror_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcTime, nullable=False),
    )


def downgrade() -> None:
    for name in ("mirror_cursors", "quarantine", "devices", "patients"):
        op.drop_table(name)
    op.drop_index("ix_readings_patient_kind_time", "readings")
    op.drop_table("readings")
