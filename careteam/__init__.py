"""The care-team record: patients, institutions, teams, members, hub and device enrolment,
consent, audit.

It sits below ingest, alerts and the API (it imports only the standard library, SQLAlchemy,
Alembic and `cryptography`), so each of them reads and writes the record in its own transaction.
Every adapter function takes the caller's `sqlalchemy.Connection` and joins its transaction;
writes append their audit entry in that same transaction. Time is always passed in (`at`).

Python API (names are stable):

- Values and pure rules: `careteam.patients` (`PatientProfile`, `PatientCarePlan`),
  `careteam.kinds` (`DATA_KINDS`, `parse_data_kinds`), `careteam.conditions` (`CONDITIONS`),
  `careteam.consent` (`Grant`, `GrantRequest`, `Accessor`, `Decision`, `decide`,
  `permitted_kinds`), `careteam.audit` (`Actor`, `AuditRecord`, `AuditEntry`, `Anchor`,
  `verify_chain`, `to_fhir`, `describe`), `careteam.enrolment` (codes, attempt limits),
  `careteam.forwarded` (`client_address`: a request's source behind trusted proxies).
- Patients: `careteam.record.add_patient`, `update_care_plan`, `get_patient`, `list_patients`,
  `require_patients`, and for the rules engine `care_plans(conn, patient_ids)` -> IANA time
  zone and condition codes per patient.
- Institutions, teams, members: `careteam.registry.add_institution`, `add_team`, `add_member`,
  `assign_patient`, `get_institution`, `get_team`, `list_teams`, `get_member`, `team_members`,
  `teams_following`, `accessor_for_team`, `accessor_for_member`.
- Consent: `careteam.consent_store.grant`, `withdraw`, `get_grant`, `grants_for_patient`,
  `grants_for_team`, `decide_for` (no audit), `check` (decision + ``data.read`` audit entry).
- Audit: `careteam.audit_store.append(conn, record, at)`, `record(actor, action, ...)`,
  `entries`, `iter_entries`, `head`, `verify`.
- Enrolment: `careteam.enrolment_store.create_code`, `redeem`, `revoke_gateway`,
  `hub_patients`, `patient_gateways`, `enrolled_patients` (ingest's check).
- Devices hubs report: `careteam.device_store.record_pairings` (ingest, from ``hv.pairing/1``;
  audits ``device.pair`` / ``device.unpair``), `devices_of_patient`, `devices_of_gateway`,
  `device_records` -> `HubDevice`.
- Schema: `careteam.tables`; migrations: `careteam.migrations.migrate(url_or_engine)`.
- Errors: `careteam.errors` (`CareteamError`, `InvalidFieldError(field, reason)`,
  `NotFoundError(field, value)`, ...).
"""
