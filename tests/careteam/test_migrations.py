"""An existing database (care-team tables made by delivery's old revision d0001, data in them)
upgrades through Alembic: tables adopted, patients and alerts-only `migrated` grants added."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from alerts.delivery import migrations as delivery_migrations
from careteam import consent_store, record
from careteam.consent import Accessor
from careteam.db import make_engine

OLD_D0001 = """
CREATE TABLE institutions (id VARCHAR(64) PRIMARY KEY, name VARCHAR(200) NOT NULL,
  kind VARCHAR(40) NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE care_teams (id VARCHAR(64) PRIMARY KEY,
  institution_id VARCHAR(64) NOT NULL REFERENCES institutions(id), name VARCHAR(200) NOT NULL,
  created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE care_team_members (id VARCHAR(64) PRIMARY KEY,
  team_id VARCHAR(64) NOT NULL REFERENCES care_teams(id), display_name VARCHAR(200) NOT NULL,
  role VARCHAR(40) NOT NULL, escalation_tier INTEGER NOT NULL, active BOOLEAN NOT NULL,
  created_at TIMESTAMPTZ NOT NULL);
CREATE INDEX ix_care_team_members_team_id ON care_team_members (team_id);
CREATE TABLE care_team_patients (team_id VARCHAR(64) REFERENCES care_teams(id),
  patient_id VARCHAR(64), escalation_tier INTEGER NOT NULL, assigned_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (team_id, patient_id));
CREATE INDEX ix_care_team_patients_patient_id ON care_team_patients (patient_id);
CREATE TABLE webhook_endpoints (id VARCHAR(64) PRIMARY KEY,
  team_id VARCHAR(64) NOT NULL REFERENCES care_teams(id), url TEXT NOT NULL,
  event_types TEXT NOT NULL, escalation_tier INTEGER NOT NULL, enabled BOOLEAN NOT NULL,
  disabled_reason TEXT, disabled_at TIMESTAMPTZ, failing_since TIMESTAMPTZ,
  description VARCHAR(200) NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE INDEX ix_webhook_endpoints_team_id ON webhook_endpoints (team_id);
CREATE TABLE webhook_endpoint_secrets (id SERIAL PRIMARY KEY,
  endpoint_id VARCHAR(64) NOT NULL REFERENCES webhook_endpoints(id), secret TEXT NOT NULL,
  created_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ);
CREATE INDEX ix_webhook_endpoint_secrets_endpoint_id ON webhook_endpoint_secrets (endpoint_id);
INSERT INTO institutions VALUES ('i1', 'City Hospital', 'hospital_clinic', now());
INSERT INTO care_teams VALUES ('t1', 'i1', 'Cardiology', now());
INSERT INTO care_team_patients VALUES ('t1', 'legacy-patient', 0, '2026-01-01T00:00:00Z');
"""


def test_a_database_from_before_the_record_upgrades(pg_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        for statement in OLD_D0001.split(";"):
            if statement.strip():
                conn.execute(sa.text(statement))
    # The rest of what the old d0001 made: delivery's own tables, its chain at d0001.
    with engine.begin() as conn:
        command.upgrade(delivery_migrations.alembic_config(conn), "d0001")
    delivery_migrations.migrate(engine)
    at = datetime.now(UTC)
    with engine.connect() as conn:
        patient = record.get_patient(conn, "legacy-patient")
        grants = consent_store.grants_for_patient(conn, "legacy-patient")
        alerts = consent_store.decide_for(
            conn, Accessor("t1", "i1"), "legacy-patient", "alerts", at
        )
        glucose = consent_store.decide_for(
            conn, Accessor("t1", "i1"), "legacy-patient", "glucose", at
        )
        versions = {
            t: conn.execute(sa.text(f"SELECT version_num FROM {t}")).scalar()
            for t in ("alembic_version_careteam", "alembic_version_delivery")
        }
    engine.dispose()
    assert patient.timezone == "UTC"
    assert [(g.method, g.data_kinds) for g in grants] == [("migrated", ("alerts",))]
    assert alerts.permit and not glucose.permit
    assert versions["alembic_version_careteam"] == "c0002"
