"""Tables of the rules engine (SQLAlchemy 2 Core), the same on PostgreSQL and SQLite.

Created by the engine's own Alembic environment (`alerts/migrations`, version table
`alembic_version_alerts`); a test compares the migrated database with these definitions.

- `alerts`: one row per episode (`alert_id` deterministic, see `alerts.engine.episodes`); at
  most one open episode per (patient, rule, subject) (partial unique index).
- `alert_history`: every revision of every alert with its evidence (UNIQUE alert_id, revision)
  and whether its event was pushed (alert fatigue: see `alerts.engine.episodes`).
- `alert_events`: the `AlertEvent`s the engine pushed (UNIQUE event_id), kept here whatever
  the injected delivery sink does with them.
- `alert_engine_cursor`: the last `readings.id` the engine has evaluated, per engine name.
- `alert_engine_leases`: scale-out (`alerts.engine.leases`): one row per patient partition,
  its owner worker, lease expiry, epoch (+1 on every claim) and the last `readings.id`
  evaluated for that partition (NULL: not yet evaluated by a worker, start from the cursor).
- `alert_engine_workers`: the workers that are alive (heartbeat), to share the partitions.
"""

from __future__ import annotations

from typing import Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

metadata: Final = sa.MetaData()

BigId: Final = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json: Final = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
UtcTime: Final = sa.DateTime(timezone=True)

alerts: Final = sa.Table(
    "alerts",
    metadata,
    sa.Column("alert_id", sa.String(36), primary_key=True),
    sa.Column("patient_id", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("rule_version", sa.Integer(), nullable=False),
    sa.Column("subject", sa.String(32), nullable=False),
    sa.Column("priority", sa.String(8), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("anchor_reading_id", sa.String(64), nullable=False),
    sa.Column("last_reading_id", sa.String(64), nullable=False),
    sa.Column("opened_at", UtcTime, nullable=False),
    sa.Column("updated_at", UtcTime, nullable=False),
    sa.Column("resolved_at", UtcTime, nullable=True),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("severity", sa.Float(), nullable=True),
    sa.Column("notified_at", UtcTime, nullable=True),
    sa.Column("notified_priority", sa.String(8), nullable=True),
    sa.Column("notified_severity", sa.Float(), nullable=True),
    sa.Index(
        "ux_alerts_one_open",
        "patient_id",
        "rule_id",
        "subject",
        unique=True,
        postgresql_where=sa.text("status = 'open'"),
        sqlite_where=sa.text("status = 'open'"),
    ),
    sa.Index("ix_alerts_patient", "patient_id", "opened_at"),
)

alert_history: Final = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", BigId, sa.Identity(always=False), primary_key=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.alert_id"), nullable=False),
    sa.Column("revision", sa.Integer(), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("at", UtcTime, nullable=False),
    sa.Column("evidence", Json, nullable=False),
    sa.Column("pushed", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.UniqueConstraint("alert_id", "revision", name="uq_alert_history_revision"),
)

alert_events: Final = sa.Table(
    "alert_events",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("occurred_at", UtcTime, nullable=False),
    sa.Column("patient_id", sa.String(64), nullable=True),
    sa.Column("alert_id", sa.String(36), nullable=True),
    sa.Column("rule_id", sa.String(64), nullable=True),
    sa.Column("priority", sa.String(8), nullable=True),
    sa.Column("revision", sa.Integer(), nullable=False),
)

alert_engine_cursor: Final = sa.Table(
    "alert_engine_cursor",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("last_reading_id", sa.BigInteger(), nullable=False),
    sa.Column("evaluated_at", UtcTime, nullable=False),
)

alert_engine_leases: Final = sa.Table(
    "alert_engine_leases",
    metadata,
    sa.Column("partition", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(128), nullable=True),
    sa.Column("lease_until", UtcTime, nullable=True),
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("last_reading_id", sa.BigInteger(), nullable=True),
)

alert_engine_workers: Final = sa.Table(
    "alert_engine_workers",
    metadata,
    sa.Column("worker_id", sa.String(128), primary_key=True),
    sa.Column("seen_until", UtcTime, nullable=False),
)
