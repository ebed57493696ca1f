"""Consent at the webhook boundary: who may be told about a patient, and what is cancelled.

An alert webhook discloses patient data (that patient X has an alert) to a care team's
endpoint, so delivery asks the record (`careteam.consent`) for a current grant of the
``alerts`` kind three times: when routing an event (a team without one gets no delivery), just
before each send (a grant that expired or was withdrawn since routing cancels the delivery,
with the reason), and at withdrawal (`withdraw_consent` cancels what was still pending for the
grantee at once). Every send is audited as a ``disclosure.webhook`` (in `worker`), every
cancellation as ``delivery.cancel``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from alerts.delivery.tables import CANCELLED, PENDING, webhook_deliveries, webhook_events
from careteam import audit_store, consent_store
from careteam.audit import Actor, AuditRecord
from careteam.consent import Accessor, Decision, Grant, decide
from careteam.tables import care_teams, webhook_endpoints

log = logging.getLogger(__name__)

ALERTS = "alerts"
DELIVERY_ACTOR = Actor("system", "delivery", source="delivery")


def decisions(
    conn: sa.Connection, patient_id: str, team_ids: Iterable[str], at: datetime
) -> dict[str, Decision]:
    """The ``alerts`` consent decision at `at` for each team about `patient_id`."""
    teams = set(team_ids)
    if not teams:
        return {}
    t = care_teams.c
    institution = dict(
        conn.execute(sa.select(t.id, t.institution_id).where(t.id.in_(teams))).tuples().all()
    )
    grants = consent_store.grants_for_patient(conn, patient_id)
    return {
        team: decide(grants, Accessor(team, institution.get(team, "")), patient_id, ALERTS, at)
        for team in sorted(teams)
    }


def permitted_teams(
    conn: sa.Connection, patient_id: str, team_ids: Iterable[str], at: datetime
) -> set[str]:
    """The teams among `team_ids` with a current ``alerts`` grant for `patient_id` at `at`."""
    return {team for team, d in decisions(conn, patient_id, team_ids, at).items() if d.permit}


def audit_cancelled(
    conn: sa.Connection, patient_id: str, team_id: str, *, count: int, reason: str, at: datetime
) -> None:
    """Audit that `count` deliveries about `patient_id` to `team_id` were cancelled."""
    audit_store.append(
        conn,
        AuditRecord(
            actor_kind="system",
            actor_id="delivery",
            action="delivery.cancel",
            patient_id=patient_id,
            entity_kind="care_team",
            entity_id=team_id,
            source="delivery",
            detail={"deliveries": count, "reason": reason},
        ),
        at,
    )


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """A withdrawn grant and the deliveries it cancelled."""

    grant: Grant
    cancelled: int


def cancel_unconsented(conn: sa.Connection, patient_id: str, at: datetime) -> int:
    """Cancel every pending delivery about `patient_id` whose team has no ``alerts`` grant at
    `at` (reason ``consent: <why>``); returns how many were cancelled."""
    d, e, w = webhook_deliveries.c, webhook_events.c, webhook_endpoints.c
    pending = conn.execute(
        sa.select(d.id, w.team_id)
        .join(webhook_events, e.event_id == d.event_id)
        .join(webhook_endpoints, w.id == d.endpoint_id)
        .where(d.status == PENDING, e.patient_id == patient_id)
        .with_for_update(of=webhook_deliveries)
    ).all()
    verdicts = decisions(conn, patient_id, {r.team_id for r in pending}, at)
    by_team: dict[str, list[int]] = {}
    for row in pending:
        if not verdicts[row.team_id].permit:
            by_team.setdefault(row.team_id, []).append(row.id)
    for team_id, ids in sorted(by_team.items()):
        reason = f"consent: {verdicts[team_id].reason}"
        conn.execute(
            sa.update(webhook_deliveries)
            .where(d.id.in_(ids))
            .values(status=CANCELLED, last_error=reason, lease_until=None)
        )
        audit_cancelled(conn, patient_id, team_id, count=len(ids), reason=reason, at=at)
        log.info("team %s: %d pending deliveries cancelled (%s)", team_id, len(ids), reason)
    return sum(len(ids) for ids in by_team.values())


def withdraw_consent(
    conn: sa.Connection, consent_id: str, *, actor: Actor, at: datetime, reason: str
) -> Withdrawal:
    """Withdraw a grant and, in the same transaction, cancel the deliveries still pending for
    teams it no longer covers. Use this (not `careteam.consent_store.withdraw` alone) wherever
    a withdrawal is recorded.

    Raises:
        careteam.errors.NotFoundError: unknown ``consent_id``.
        careteam.errors.InvalidFieldError: empty ``reason``.
    """
    grant = consent_store.withdraw(conn, consent_id, actor=actor, at=at, reason=reason)
    return Withdrawal(grant, cancel_unconsented(conn, grant.patient_id, at))
