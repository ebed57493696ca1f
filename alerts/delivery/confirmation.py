"""Confirmed delivery: acknowledgement by a care-team member, and escalation when nobody does.

IEC 60601-1-8 distributed alarm systems (docs/reliability.md): a remote alarm path must confirm
delivery. A 2xx from the receiver is delivery; `acknowledge` is confirmation; `escalate_due` pages
the next tier for every high-priority alert still unconfirmed after `EscalationPolicy.ack_timeout`
(decision: `escalation.decide`, a pure function) and emits `alert.escalated`, itself delivered
through the outbox. Both run in the caller's transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from alerts.delivery import ack_token, consent_gate, escalation
from alerts.delivery.errors import AcknowledgementRefusedError, NotFoundError
from alerts.delivery.outbox import (
    entitled_endpoints,
    insert_ignoring_duplicates,
    members_to_page,
    store_and_route,
)
from alerts.delivery.payload import StoredEvent
from alerts.delivery.tables import ack_link_uses, alert_confirmations, webhook_events
from alerts.events import EventType, Priority, event_id_for
from careteam import audit_store
from careteam.audit import AuditRecord
from careteam.tables import care_team_members, care_team_patients, webhook_endpoints

log = logging.getLogger(__name__)


def _priority(value: str | None) -> Priority | None:
    return Priority(value) if value is not None else None


def _route(conn: sa.Connection, event: StoredEvent, patient_id: str, tier: int) -> None:
    endpoints = entitled_endpoints(conn, patient_id, event.type, tier, event.occurred_at)
    store_and_route(conn, event, [endpoint_id for endpoint_id, _ in endpoints])


@dataclass(frozen=True, slots=True)
class AckSource:
    """How an acknowledgement arrived: `via` (``link``, ``cli``, ``api``), from `address`, and
    the id of the credential used (the link's digest prefix, a token id). `audited` is True when
    the caller writes the audit entry itself (the API's gate), so it is not written twice."""

    via: str
    address: str | None = None
    credential: str | None = None
    audited: bool = False


CLI_SOURCE = AckSource("cli", "cli")


def _audit_acknowledgement(
    conn: sa.Connection, alert: sa.Row[Any], member_id: str, at: datetime, source: AckSource
) -> None:
    audit_store.append(
        conn,
        AuditRecord(
            actor_kind="member",
            actor_id=member_id,
            action="alert.acknowledge",
            patient_id=alert.patient_id,
            entity_kind="alert",
            entity_id=alert.alert_id,
            data_kind=consent_gate.ALERTS,
            source=source.address,
            purpose=source.credential,
            detail={"via": source.via, "first": alert.acknowledged_at is None},
        ),
        at,
    )


def acknowledge(
    conn: sa.Connection,
    alert_id: str,
    member_id: str,
    at: datetime,
    *,
    team_id: str | None = None,
    source: AckSource = CLI_SOURCE,
) -> bool:
    """Record that a care-team member acknowledged an alert (with how and from where), audit it
    (``alert.acknowledge``), and tell the teams.

    Returns True for the first acknowledgement (which emits `alert.acknowledged`), False if the
    alert was already acknowledged (idempotent). `team_id`, when given (from a signed link),
    restricts who may acknowledge to that team's members.

    Raises:
        NotFoundError: unknown alert (``"alert_id"``) or member (``"member_id"``).
        AcknowledgementRefusedError: the member is inactive, not on `team_id`, on no team that
            follows the alert's patient, or their team holds no current ``alerts`` grant for
            the patient (field ``"member_id"``).
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
    if member.team_id not in consent_gate.permitted_teams(
        conn, alert.patient_id, [member.team_id], at
    ):
        raise AcknowledgementRefusedError(
            "member_id", "the member's team has no current alerts consent for the patient"
        )
    if not source.audited:
        _audit_acknowledgement(conn, alert, member_id, at, source)
    if alert.acknowledged_at is not None:
        return False
    conn.execute(
        sa.update(alert_confirmations)
        .where(c.alert_id == alert_id)
        .values(
            acknowledged_at=at,
            acknowledged_by=member_id,
            acknowledged_via=source.via,
            acknowledged_source=source.address,
        )
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
    log.info("alert %s acknowledged by member %s via %s", alert_id, member_id, source.via)
    return True


def acknowledge_by_link(
    conn: sa.Connection, claims: ack_token.AckClaims, token: str, at: datetime, address: str | None
) -> bool:
    """Acknowledge through a member's link (already verified: `ack_token.verify`).

    The link must still name a member that its event pages for its team, and works once.

    Raises:
        AcknowledgementRefusedError: the event does not page this member for this team, or the
            link was used (field ``"token"``); see `acknowledge` for the rest.
        NotFoundError: see `acknowledge`.
    """
    e = webhook_events.c
    event = conn.execute(sa.select(webhook_events).where(e.event_id == claims.event_id)).first()
    if event is None or event.alert_id != claims.alert_id or event.page_members is None:
        raise AcknowledgementRefusedError("token", "the link names no paged member of its event")
    paged = json.loads(event.page_members).get(claims.team_id, [])
    if claims.member_id not in paged:
        raise AcknowledgementRefusedError("token", "the link names no paged member of its event")
    digest = ack_token.digest(token)
    used = insert_ignoring_duplicates(
        conn,
        ack_link_uses,
        [
            {
                "token_sha256": digest,
                "event_id": claims.event_id,
                "alert_id": claims.alert_id,
                "member_id": claims.member_id,
                "used_at": at,
                "source": address,
            }
        ],
        ["token_sha256"],
    )
    if used == 0:
        raise AcknowledgementRefusedError("token", "the link was used already")
    return acknowledge(
        conn,
        claims.alert_id,
        claims.member_id,
        at,
        team_id=claims.team_id,
        source=AckSource("link", address, f"link:{digest[:16]}"),
    )


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
