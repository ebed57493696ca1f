"""Record-store tables owned by ingest (SQLAlchemy 2 Core), the same on PostgreSQL and SQLite.

The migrations in `ingest/migrations/` create exactly these tables; a test compares them.

- `readings`: one row per distinct `reading_id` (UNIQUE: the end-to-end dedupe key). `id` is a
  surrogate that increases in commit order (writers serialise their commits, see
  `ingest.store.write_batch`), so "everything after id N" is a safe cursor for the mirror and
  the rules engine.
- `patients`, `devices`: seen identities (later packages add pairings and care plans).
- `quarantine`: payloads and readings that did not validate, with raw bytes, topic, the field
  and reason, and the time received. `digest` makes a redelivered bad payload land once.
- `mirror_cursors`: the last `readings.id` each mirror has written to the time-series server.
- `hub_status`, `device_contacts`: what each hub last said about itself (status `online` /
  `offline`, heartbeat) and when it last reached each of its devices; read by the data-freshness
  findings (`alerts.freshness`).
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata: Final = sa.MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
BigId: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json: Final = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UtcTime: Final = sa.DateTime(timezone=True)

readings: Final = sa.Table(
    "readings",
    metadata,
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
    sa.Index("ix_readings_patient_kind_time", "patient_id", "kind", "measured_at"),
)

patients: Final = sa.Table(
    "patients",
    metadata,
    sa.Column("patient_id", sa.String(64), primary_key=True),
    sa.Column("first_seen_at", UtcTime, nullable=False),
)

devices: Final = sa.Table(
    "devices",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("manufacturer", sa.String(64), nullable=True),
    sa.Column("model", sa.String(64), nullable=True),
    sa.Column("serial", sa.String(64), nullable=True),
    sa.Column("firmware", sa.String(64), nullable=True),
    sa.Column("first_seen_at", UtcTime, nullable=False),
)

quarantine: Final = sa.Table(
    "quarantine",
    metadata,
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

mirror_cursors: Final = sa.Table(
    "mirror_cursors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UtcTime, nullable=False),
)

hub_status: Final = sa.Table(
    "hub_status",
    metadata,
    sa.Column("gateway_id", sa.String(64), primary_key=True),
    sa.Column("online", sa.Boolean(), nullable=False),
    sa.Column("status_at", UtcTime, nullable=True),  # when ingest received the last status
    sa.Column("heartbeat_at", UtcTime, nullable=True),  # when ingest received the last heartbeat
    # From the last heartbeat: the hub's outbox is full; the hub's clock minus ingest's (s).
    sa.Column("storage_full", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("clock_offset_s", sa.Float(), nullable=True),
)

device_contacts: Final = sa.Table(
    "device_contacts",
    metadata,
    sa.Column("gateway_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("paired_at", UtcTime, nullable=False),
    sa.Column("last_contact_at", UtcTime, nullable=True),
    sa.Column("reported_at", UtcTime, nullable=False),
)
