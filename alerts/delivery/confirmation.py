"""Confirmed delivery: acknowledgement by a care-team member, and escalation when nobody does.

IEC 60601-1-8 distributed alarm systems (docs/reliability.md): a remote alarm path must confirm
delivery. A 2xx from the receiver is delivery; `acknowledge` is confirmation; `escalate_due` pages
the next tier for every high-priority alert still unconfirmed after `EscalationPolicy.ack_timeout`
(decision: `escalation.decide`, a pure function) and emits `alert.escalated`, itself delivered
through the outbox. Both run in the caller's transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from alerts.delivery import escalation
from alerts.delivery.errors import AcknowledgementRefusedError, NotFoundError
from alerts.delivery.outbox import entitled_endpoints, store_and_route
from alerts.delivery.payload import StoredEvent
from alerts.delivery.tables import alert_confirmations
from alerts.events import EventType, Priority, event_id_for
from careteam.tables import care_team_members, care_team_patients, webhook_endpoints

log = logging.getLogger(__name__)


def _priority(value: str | None) -> Priority | None:
    return Priority(value) if value is not None else None


def _route(conn: sa.Connection, event: StoredEvent, patient_id: str, tier: int) -> None:
    endpoints = entitled_endpoints(conn, patient_id, event.type, tier, event.occurred_at)
    store_and_route(conn, event, [endpoint_id for endpoint_id, _ in endpoints])


def acknowledge(
    conn: sa.Connection, alert_id: str, member_id: str, at: datetime, team_id: str | None = None
) -> bool:
    """Record that a care-team member acknowledged an alert, and tell the teams.

    Returns True for the first acknowledgement (which emits `alert.acknowledged`), False if the
    alert was already acknowledged (idempotent). `team_id`, when given (from a signed callback
    token), restricts who may acknowledge to that team's members.

    Raises:
        NotFoundError: unknown alert (``"alert_id"``) or member (``"member_id"``).
        AcknowledgementRefusedError: the member is inactive, not on `team_id`, or on no team that
            follows the alert's patient (field ``"member_id"``).
    """
    c = alert_confirmations.c
    alert = conn.execute(
        sa.select(alert_confirmations).where(c.alert_id == alert_id).with_for_update()
    ).first()
    if alert is None:
        raise NotFoundError("alert_id", alert_id)
    m = care_team_members.c
    member = conn.execute(sa.select(care_team_members).where(m.id == member_id)).first()
    if member is None:
        raise NotFoundError("member_id", member_id)
    if not member.active:
        raise AcknowledgementRefusedError("member_id", "the member is not active")
    if team_id is not None and member.team_id != team_id:
        raise AcknowledgementRefusedError("member_id", "the member is not on the notified team")
    p = care_team_patients.c
    follows = conn.execute(
        sa.select(p.team_id).where(p.team_id == member.team_id, p.patient_id == alert.patient_id)
    ).first()
    if follows is None:
        raise AcknowledgementRefusedError(
            "member_id", "the member's team does not follow the patient"
        )
    if alert.acknowledged_at is not None:
        return False
    conn.execute(
        sa.update(alert_confirmations)
        .where(c.alert_id == alert_id)
        .values(acknowledged_at=at, acknowledged_by=member_id)
    )
    event = StoredEvent(
        event_id=event_id_for(EventType.ALERT_ACKNOWLEDGED, alert_id, 1),
        type=EventType.ALERT_ACKNOWLEDGED,
        occurred_at=at,
        patient_id=alert.patient_id,
        alert_id=alert_id,
        rule_id=None,
        priority=_priority(alert.priority),
        revision=alert.revision,
        subject_id=member_id,
    )
    _route(conn, event, alert.patient_id, alert.tier)
    log.info("alert %s acknowledged by member %s", alert_id, member_id)
    return True


def members_to_page(conn: sa.Connection, patient_id: str, tier: int) -> dict[str, tuple[str, ...]]:
    """Per team following `patient_id`, its active members whose effective tier is `tier`."""
    m, p = care_team_members.c, care_team_patients.c
    rows = conn.execute(
        sa.select(m.team_id, m.id)
        .join(care_team_patients, p.team_id == m.team_id)
        .where(
            p.patient_id == patient_id,
            m.active.is_(True),
            p.escalation_tier + m.escalation_tier == tier,
        )
        .order_by(m.team_id, m.id)
    )
    found: dict[str, list[str]] = {}
    for team_id, member_id in rows:
        found.setdefault(team_id, []).append(member_id)
    return {team_id: tuple(ids) for team_id, ids in found.items()}


def max_tier(conn: sa.Connection, patient_id: str) -> int:
    """The highest escalation tier of any enabled endpoint that follows `patient_id`."""
    e, p = webhook_endpoints.c, care_team_patients.c
    value = conn.execute(
        sa.select(sa.func.max(p.escalation_tier + e.escalation_tier))
        .join(webhook_endpoints, e.team_id == p.team_id)
        .where(p.patient_id == patient_id, e.enabled.is_(True))
    ).scalar()
    return int(value) if value is not None else 0


def escalate_due(
    conn: sa.Connection, now: datetime, policy: escalation.EscalationPolicy
) -> list[StoredEvent]:
    """Escalate every high-priority alert whose current tier did not acknowledge in time.

    Returns the `alert.escalated` events written (already routed to their deliveries).
    """
    c = alert_confirmations.c
    stmt = (
        sa.select(alert_confirmations)
        .where(
            c.acknowledged_at.is_(None),
            c.resolved_at.is_(None),
            c.priority == Priority.HIGH.value,
            c.tier_since <= now - policy.ack_timeout,
        )
        .order_by(c.tier_since)
        .with_for_update(skip_locked=True)
    )
    emitted: list[StoredEvent] = []
    for row in conn.execute(stmt).all():
        state = escalation.ConfirmationState(
            priority=_priority(row.priority),
            tier=row.tier,
            tier_since=row.tier_since,
            max_tier=max_tier(conn, row.patient_id),
            acknowledged_at=row.acknowledged_at,
            resolved_at=row.resolved_at,
        )
        decision = escalation.decide(state, now, policy)
        if not isinstance(decision, escalation.Escalate):
            continue
        conn.execute(
            sa.update(alert_confirmations)
            .where(c.alert_id == row.alert_id)
            .values(tier=decision.tier, tier_since=now)
        )
        event = StoredEvent(
            event_id=event_id_for(EventType.ALERT_ESCALATED, row.alert_id, decision.tier),
            type=EventType.ALERT_ESCALATED,
            occurred_at=now,
            patient_id=row.patient_id,
            alert_id=row.alert_id,
            rule_id=None,
            priority=Priority.HIGH,
            revision=row.revision,
            tier=decision.tier,
            page_members=members_to_page(conn, row.patient_id, decision.tier),
        )
        _route(conn, event, row.patient_id, decision.tier)
        log.warning("alert %s escalated to tier %d", row.alert_id, decision.tier)
        emitted.append(event)
    return emitted
