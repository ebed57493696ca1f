"""Tables of the care-team record (SQLAlchemy Core; migrations in careteam/migrations).

Patients, institutions, teams and members, the patients a team follows, hub enrolment and the
devices hubs report, consent grants, the audit trail, webhook endpoints and their (sealed)
secrets. Delivery's tables
(alerts/delivery/tables.py) live in their own `MetaData` and refer to endpoints by foreign key.

Existing databases had the care-team tables from delivery's revision d0001; careteam's first
revision adopts them as they are (see `careteam/migrations/versions/c0001_care_team_record.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend.

    PostgreSQL keeps the zone (timestamptz); SQLite has no zone, so values are stored as naive
    UTC and given back as aware UTC. Naive values are refused on the way in: a naive datetime
    here would be a bug (times are aware UTC).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


INSTITUTION_KINDS = ("hospital_clinic", "community_health_centre", "family_practice", "other")
MEMBER_ROLES = ("physician", "nurse", "pharmacist", "coordinator", "other")

institutions = Table(
    "institutions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

care_teams = Table(
    "care_teams",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("institution_id", String(64), ForeignKey("institutions.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

care_team_members = Table(
    "care_team_members",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("team_id", String(64), ForeignKey("care_teams.id"), nullable=False, index=True),
    Column("display_name", String(200), nullable=False),
    Column("role", String(40), nullable=False),
    # 0 = paged first; 1 = paged when tier 0 did not acknowledge in time; ...
    Column("escalation_tier", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# A team follows a patient at an escalation tier; what it may see is decided by consent grants.
care_team_patients = Table(
    "care_team_patients",
    metadata,
    Column("team_id", String(64), ForeignKey("care_teams.id"), primary_key=True),
    Column("patient_id", String(64), primary_key=True, index=True),
    # The tier at which this team is engaged for this patient (another institution = 1...).
    Column("escalation_tier", Integer, nullable=False),
    Column("assigned_at", UtcDateTime(), nullable=False),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("team_id", String(64), ForeignKey("care_teams.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    # Space-separated event types (portable across SQLite and PostgreSQL).
    Column("event_types", Text, nullable=False),
    # Added to the team's tier for the patient: a supervisor's endpoint may sit one tier up.
    Column("escalation_tier", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text),
    Column("disabled_at", UtcDateTime()),
    Column("failing_since", UtcDateTime()),
    Column("description", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

webhook_endpoint_secrets = Table(
    "webhook_endpoint_secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "endpoint_id", String(64), ForeignKey("webhook_endpoints.id"), nullable=False, index=True
    ),
    # Sealed (careteam.secrets): "hvs1:<key id>:<base64 nonce+ciphertext>", never the whsec_.
    Column("secret", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Set when the secret is rotated out: it keeps signing until then (overlap).
    Column("expires_at", UtcDateTime()),
)

patient_records = Table(
    "patient_records",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    # What a household hub shows on its pairing page (initials or a first name).
    Column("short_name", String(40), nullable=False),
    Column("timezone", String(64), nullable=False),
    # Space-separated condition codes (careteam.conditions).
    Column("conditions", Text, nullable=False),
    Column("language", String(8), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
)

gateways = Table(
    "gateways",
    metadata,
    Column("gateway_id", String(64), primary_key=True),
    # Broker user name (= gateway id under the shipped ACL's %u patterns).
    Column("mqtt_username", String(64), nullable=False),
    Column("enrolled_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
    Column("revoked_by", String(64)),
)

gateway_patients = Table(
    "gateway_patients",
    metadata,
    Column("gateway_id", String(64), ForeignKey("gateways.gateway_id"), primary_key=True),
    Column("patient_id", String(64), ForeignKey("patient_records.patient_id"), primary_key=True),
    Column("enrolled_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime()),
)

enrolment_codes = Table(
    "enrolment_codes",
    metadata,
    Column("id", String(64), primary_key=True),
    # SHA-256 of the normalised code: the code itself is shown once and never stored.
    Column("code_sha256", String(64), nullable=False, unique=True),
    # Space-separated patient ids the hub will serve.
    Column("patient_ids", Text, nullable=False),
    # Set when the code adds patients to an enrolled hub instead of enrolling a new one.
    Column("gateway_id", String(64)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("used_at", UtcDateTime()),
    Column("used_by_gateway", String(64)),
)

# The devices hubs report pairing (`careteam.device_store`): one row per device and hub.
hub_devices = Table(
    "hub_devices",
    metadata,
    Column("gateway_id", String(64), ForeignKey("gateways.gateway_id"), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("manufacturer", String(64)),
    Column("model", String(64)),
    Column("serial", String(64)),
    Column("firmware", String(64)),
    # The hub's times: when it paired the device, and unpaired it (None while paired).
    Column("paired_at", UtcDateTime(), nullable=False),
    Column("unpaired_at", UtcDateTime()),
    # When the record learned the state it holds (ingest's receive time).
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Whose readings a device gives: a row per patient; `user_index` is a shared cuff's user for
# that patient (None: the device's readings without a user index).
hub_device_patients = Table(
    "hub_device_patients",
    metadata,
    Column("gateway_id", String(64), primary_key=True),
    Column("device_id", String(64), primary_key=True),
    Column("patient_id", String(64), ForeignKey("patient_records.patient_id"), primary_key=True),
    Column("user_index", Integer),
    ForeignKeyConstraint(
        ["gateway_id", "device_id"], ["hub_devices.gateway_id", "hub_devices.device_id"]
    ),
    Index("ix_hub_device_patients_patient_id", "patient_id"),
)

# Every pairing event a hub reported, kept once (the hub's own event id): the history, and what
# makes a resent event change nothing.
hub_device_events = Table(
    "hub_device_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gateway_id", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("action", String(8), nullable=False),
    Column("device_id", String(64), nullable=False),
    # Space-separated patient ids the device's readings went to.
    Column("patient_ids", Text, nullable=False),
    Column("at", UtcDateTime(), nullable=False),  # the hub's time of the event
    Column("received_at", UtcDateTime(), nullable=False),
    UniqueConstraint("gateway_id", "event_id", name="uq_hub_device_events_event"),
)

enrolment_attempts = Table(
    "enrolment_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("at", UtcDateTime(), nullable=False, index=True),
    Column("ok", Boolean, nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("patient_id", String(64), ForeignKey("patient_records.patient_id"), nullable=False),
    # "team" or "institution" (FHIR Consent.provision.actor with role "grantee").
    Column("grantee_kind", String(16), nullable=False),
    Column("grantee_id", String(64), nullable=False),
    # Space-separated data kinds (careteam.kinds).
    Column("data_kinds", Text, nullable=False),
    Column("period_start", UtcDateTime(), nullable=False),
    Column("period_end", UtcDateTime()),
    # in_person, paper, app, migrated (granted before consent was recorded).
    Column("method", String(16), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    # active | inactive (withdrawn): FHIR Consent.status.
    Column("status", String(16), nullable=False),
    Column("withdrawn_at", UtcDateTime()),
    Column("withdrawn_by", String(64)),
    Column("withdraw_reason", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Position in the chain, 1, 2, 3...: assigned under a lock, never reused.
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("actor_id", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("patient_id", String(64), index=True),
    Column("entity_kind", String(32)),
    Column("entity_id", String(64)),
    Column("data_kind", String(32)),
    Column("outcome", String(16), nullable=False),
    Column("source", String(200)),
    Column("purpose", String(200)),
    Column("detail", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("hash", name="uq_audit_log_hash"),
)

RECORD_TABLES = frozenset(metadata.tables)
