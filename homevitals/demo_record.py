"""The demo's care-team record (adapter over `careteam` and webhook endpoints): the store's
tables, the patients, the three care teams with their members and the patients' consent, the
hospital clinic's webhook endpoint, and the hub enrolment codes.

The record is written the way the care teams would write it: patients registered with their
time zone and coded conditions, each team following them with the consent the patient gave in
person (the family practice without blood pressure), an enrolment code per patient made by the
hospital's nurse and redeemed by the patient's hub at the enrolment endpoint, which gives it
its gateway id and its broker account. Every one of these writes is in the audit trail.
Webhook signing secrets are stored sealed (`careteam.secrets.SecretBox`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.delivery.ssrf import SsrfPolicy
from alerts.engine.store import migrate as migrate_engine
from careteam import consent_store, enrolment_store, record, registry
from careteam.audit import Actor
from careteam.consent import GrantRequest
from careteam.errors import NotFoundError
from careteam.secrets import SecretBox
from homevitals.demo_story import ALL_KINDS, HOSPITAL, TEAMS, PatientStory, TeamStory
from ingest.store import make_engine
from ingest.store import migrate as migrate_ingest

DEMO_ACTOR = Actor("operator", "demo", source="cli")
WEBHOOK_EVENTS = (
    "alert.opened",
    "alert.updated",
    "alert.resolved",
    "alert.escalated",
    "delivery.failing",
)


def prepare_store(db_url: str) -> None:
    """Create every table (care-team record, ingest, rules engine, delivery).

    Raises:
        StoreError, AlertsError: the database cannot be reached or migrated.
    """
    migrate_ingest(db_url)  # upgrades the care-team record first
    migrate_engine(db_url)
    migrate_delivery(db_url)


def register_patient(conn: sa.Connection, patient: PatientStory, at: datetime) -> None:
    """Register `patient` in the record unless registered already."""
    try:
        record.get_patient(conn, patient.patient_id)
    except NotFoundError:
        record.add_patient(
            conn,
            patient_id=patient.patient_id,
            display_name=patient.display_name,
            timezone=patient.timezone,
            conditions=patient.conditions,
            language=patient.language,
            actor=DEMO_ACTOR,
            at=at,
        )


def follow_with_consent(
    conn: sa.Connection,
    team_id: str,
    patient_id: str,
    at: datetime,
    *,
    kinds: Sequence[str] = ALL_KINDS,
    tier: int = 0,
) -> None:
    """Make `team_id` follow `patient_id` (registered with a demo name if new), with the
    patient's consent (given in person) for the team to see `kinds`."""
    register_patient(conn, PatientStory(patient_id, f"Demo patient {patient_id}", "UTC", ()), at)
    registry.assign_patient(conn, team_id, patient_id, at, tier=tier)
    request = GrantRequest(patient_id, "team", team_id, tuple(kinds), at, None, "in_person")
    consent_store.grant(conn, request, actor=DEMO_ACTOR, at=at)


@dataclass(frozen=True)
class RegisteredTeam:
    """A team of the story as registered: its id and its one member's id."""

    story: TeamStory
    team_id: str
    member_id: str


@dataclass(frozen=True)
class DemoRecord:
    """What the record set-up made: the teams, and the hospital clinic's webhook endpoints."""

    teams: tuple[RegisteredTeam, ...]
    endpoint_id: str
    secret: str
    url: str
    extra_endpoints: dict[str, str]  # url -> endpoint id

    @property
    def hospital(self) -> RegisteredTeam:
        """The team that receives the webhooks and acknowledges."""
        return next(t for t in self.teams if t.story.webhooks)


def register_story(
    db_url: str,
    patients: Sequence[PatientStory],
    url: str,
    extra_urls: Sequence[str] = (),
    teams: Sequence[TeamStory] = TEAMS,
    *,
    box: SecretBox,
) -> DemoRecord:
    """Register the patients and the care teams following them, with the patients' consent
    and the webhook endpoints (`url`, `extra_urls`: loopback receivers, registered under the
    development-only loopback policy; secrets sealed by `box`) of the team that takes
    webhooks; one transaction.

    Raises:
        AlertsError, CareteamError: a record write was refused (the field is named).
    """
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    made: list[RegisteredTeam] = []
    try:
        with engine.begin() as conn:
            for patient in patients:
                register_patient(conn, patient, now)
            for story in teams:
                institution = registry.add_institution(
                    conn, story.institution, story.institution_kind, now
                )
                team = registry.add_team(conn, institution, story.team, now)
                member = registry.add_member(
                    conn, team, story.member, role=story.role, tier=story.tier, at=now
                )
                for patient in patients:
                    follow_with_consent(
                        conn, team, patient.patient_id, now, kinds=story.kinds, tier=story.tier
                    )
                made.append(RegisteredTeam(story, team, member))
            hospital = next(t for t in made if t.story.webhooks)
            policy = SsrfPolicy(allow_loopback=True)
            registered = {
                u: endpoints.register_endpoint(
                    conn, hospital.team_id, u, WEBHOOK_EVENTS, at=now, policy=policy, box=box
                )
                for u in (url, *extra_urls)
            }
    finally:
        engine.dispose()
    first = registered[url]
    extra = {u: e.endpoint_id for u, e in registered.items() if u != url}
    return DemoRecord(tuple(made), first.endpoint_id, first.secret, url, extra)


@dataclass(frozen=True)
class CareTeam:
    """The hospital clinic's team and its registered endpoints."""

    team_id: str
    endpoint_id: str
    secret: str
    url: str
    extra_endpoints: dict[str, str]


def register_care_team(
    db_url: str, patient_id: str, url: str, extra_urls: tuple[str, ...] = (), *, box: SecretBox
) -> CareTeam:
    """The hospital clinic alone, following `patient_id` (a demo patient), with webhook
    endpoints at `url` and `extra_urls` (the benches' set-up).

    Raises:
        AlertsError, CareteamError: a record write was refused (the field is named).
    """
    patient = PatientStory(patient_id, f"Demo patient {patient_id}", "UTC", ())
    made = register_story(db_url, [patient], url, extra_urls, teams=(HOSPITAL,), box=box)
    return CareTeam(made.hospital.team_id, made.endpoint_id, made.secret, url, made.extra_endpoints)


def issue_enrolment_code(db_url: str, patient_id: str, member_id: str) -> str:
    """A single-use enrolment code for the patient's hub, made by a care-team member.

    Raises:
        CareteamError: unknown patient.
    """
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            issued = enrolment_store.create_code(
                conn,
                [patient_id],
                actor=Actor("member", member_id, source="dashboard"),
                at=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    return issued.code


def enrol_hub(db_url: str, gateway_id: str, patient_ids: Sequence[str]) -> None:
    """Register the patients (demo names) and enrol a hub for them, as an operator enrols a
    certificate hub (the benches; ingest quarantines readings of hubs not enrolled for the
    patient)."""
    engine = make_engine(db_url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            for pid in patient_ids:
                register_patient(conn, PatientStory(pid, f"Demo patient {pid}", "UTC", ()), now)
            enrolment_store.enrol_gateway(conn, gateway_id, patient_ids, actor=DEMO_ACTOR, at=now)
    finally:
        engine.dispose()
