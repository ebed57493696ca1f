"""Tables of webhook delivery: events, the outbox of deliveries, attempts, confirmations.

Their own `metadata` (Alembic environment `alerts/delivery/migrations`, version table
`alembic_version_delivery`); deliveries refer to the record's webhook endpoints by foreign key.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from careteam.tables import UtcDateTime, webhook_endpoints

metadata = MetaData()

PENDING = "pending"
# PostgreSQL channel NOTIFYed when a delivery becomes pending (inserted, or set back to pending),
# at the commit of the transaction that did it (trigger of revision d0003).
DELIVERIES_CHANNEL = "hv_deliveries"
DELIVERED = "delivered"
FAILED = "failed"
CANCELLED = "cancelled"

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("type", String(40), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=False),
    Column("patient_id", String(64)),
    Column("alert_id", String(64), index=True),
    Column("rule_id", String(64)),
    Column("priority", String(10)),
    Column("revision", Integer, nullable=False),
    Column("subject_id", String(64)),
    Column("tier", Integer),
    # JSON {team_id: [member_id, ...]} for alert.escalated (revision d0002).
    Column("page_members", Text),
    Column("created_at", UtcDateTime(), nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), ForeignKey("webhook_events.event_id"), nullable=False),
    Column("endpoint_id", String(64), ForeignKey(webhook_endpoints.c.id), nullable=False),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    # A worker owns the row until then; a worker killed mid-send loses it when it expires.
    Column("lease_until", UtcDateTime()),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    Column("endpoint_id", String(64), nullable=False, index=True),
    Column("attempt_number", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status_code", Integer),
    # success, http_status, redirect, gone, timeout, network, refused (SSRF), too_large
    Column("outcome", String(20), nullable=False),
    Column("error", Text),
    Column("retry_after_s", Float),
)

alert_confirmations = Table(
    "alert_confirmations",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("priority", String(10)),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("tier", Integer, nullable=False),
    Column("tier_since", UtcDateTime(), nullable=False),
    Column("acknowledged_at", UtcDateTime()),
    Column("acknowledged_by", String(64)),
    # How (``link``, ``cli``, ``api``) and from where (an address) it was acknowledged (d0005).
    Column("acknowledged_via", String(64)),
    Column("acknowledged_source", String(200)),
    Column("resolved_at", UtcDateTime()),
)

# Acknowledgement links used (d0005): one row per link, so each link works once.
ack_link_uses = Table(
    "ack_link_uses",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("member_id", String(64), nullable=False),
    Column("used_at", UtcDateTime(), nullable=False),
    Column("source", String(200)),
)

webhook_event_quarantine = Table(
    "webhook_event_quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("event_id", String(200)),
    Column("field", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),
)

RESOLVE = "resolve"

# A clinician's acknowledgements and resolutions with their notes (alerts.delivery.handling);
# rows are only ever added.
alert_actions = Table(
    "alert_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column("member_id", String(64), nullable=False),
    # acknowledge | resolve
    Column("action", String(16), nullable=False),
    Column("note", Text),
    Column("at", UtcDateTime(), nullable=False),
    # where it came from: the API's client address, "cli"...
    Column("source", String(200)),
    Index("ix_alert_actions_alert", "alert_id", "id"),
)

TABLE_NAMES = frozenset(metadata.tables)
