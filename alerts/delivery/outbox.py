"""The transactional outbox: the rules engine's event sink (`EventSink`).

`enqueue_events(conn, events)` runs inside the engine's transaction. For each event it stores the
event once, updates delivery's own record of the alert (priority, tier, acknowledgement,
resolution: `alert_confirmations`, so delivery never reads the engine's tables) and writes one
pending delivery per entitled endpoint: enabled endpoints of the care teams that follow the
event's patient, subscribe to its type and sit at or below the alert's current escalation tier.
`UNIQUE (event_id, endpoint_id)` absorbs replays. An event that is not valid is quarantined with
the reason (never raised: that would roll back the engine's alert change).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime

import sqlalchemy as sa

from alerts.delivery import consent_gate
from alerts.delivery.errors import InvalidFieldError
from alerts.delivery.payload import StoredEvent, acknowledgeable
from alerts.delivery.tables import (
    PENDING,
    alert_confirmations,
    webhook_deliveries,
    webhook_event_quarantine,
    webhook_events,
)
from alerts.events import AlertEvent, EventType, Priority
from careteam.tables import care_team_members, care_team_patients, webhook_endpoints
from ingest.store import dialect_insert

log = logging.getLogger(__name__)

ALERT_TYPES = frozenset(
    {
        EventType.ALERT_OPENED,
        EventType.ALERT_UPDATED,
        EventType.ALERT_ESCALATED,
        EventType.ALERT_RESOLVED,
        EventType.ALERT_ACKNOWLEDGED,
    }
)


def insert_ignoring_duplicates(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, object]], keys: Sequence[str]
) -> int:
    """INSERT rows, skipping those that collide on `keys`; returns how many were inserted.

    Counted with RETURNING: psycopg reports no row count (-1) for such an INSERT.
    """
    if not rows:
        return 0
    stmt = (
        dialect_insert(conn, table)
        .on_conflict_do_nothing(index_elements=list(keys))
        .returning(*(table.c[k] for k in keys))
    )
    return sum(len(conn.execute(stmt.values(**row)).all()) for row in rows)


def validate(event: AlertEvent) -> StoredEvent:
    """Check an engine event and turn it into the stored form.

    Raises:
        InvalidFieldError: naming the field (``"event_id"``, ``"occurred_at"``, ``"alert_id"``...).
    """
    if not isinstance(event.event_id, str) or not 0 < len(event.event_id) <= 64:
        raise InvalidFieldError("event_id", "must be a string of 1 to 64 characters")
    if not isinstance(event.type, EventType):
        raise InvalidFieldError("type", f"{event.type!r} is not an EventType")
    if event.occurred_at.tzinfo is None:
        raise InvalidFieldError("occurred_at", "must be an aware datetime")
    if event.priority is not None and not isinstance(event.priority, Priority):
        raise InvalidFieldError("priority", f"{event.priority!r} is not a Priority")
    if event.revision < 1:
        raise InvalidFieldError("revision", "must be >= 1")
    if event.type in ALERT_TYPES and not (event.alert_id and event.patient_id):
        raise InvalidFieldError("alert_id", f"{event.type.value} needs alert_id and patient_id")
    if event.type is EventType.DELIVERY_FAILING:
        raise InvalidFieldError("type", "delivery.failing is raised by delivery itself")
    return StoredEvent(
        event_id=event.event_id,
        type=event.type,
        occurred_at=event.occurred_at,
        patient_id=event.patient_id,
        alert_id=event.alert_id,
        rule_id=event.rule_id,
        priority=event.priority,
        revision=event.revision,
    )


def _quarantine(conn: sa.Connection, event: AlertEvent, error: InvalidFieldError) -> None:
    log.warning("event %s quarantined: %s", event.event_id, error)
    conn.execute(
        webhook_event_quarantine.insert().values(
            received_at=sa.func.now(),
            event_id=str(event.event_id)[:200],
            field=error.field,
            reason=error.reason,
            raw=repr(asdict(event)),
        )
    )


def _track(conn: sa.Connection, event: StoredEvent) -> int:
    """Update delivery's record of the alert; return the tier the event is routed to."""
    assert event.alert_id is not None and event.patient_id is not None
    c = alert_confirmations.c
    row = conn.execute(
        sa.select(alert_confirmations).where(c.alert_id == event.alert_id).with_for_update()
    ).first()
    if row is None:
        conn.execute(
            alert_confirmations.insert().values(
                alert_id=event.alert_id,
                patient_id=event.patient_id,
                priority=event.priority.value if event.priority else None,
                opened_at=event.occurred_at,
                revision=event.revision,
                tier=0,
                tier_since=event.occurred_at,
            )
        )
        row = conn.execute(sa.select(alert_confirmations).where(c.alert_id == event.alert_id)).one()
    values: dict[str, object] = {}
    if event.priority is not None and event.revision >= row.revision:
        if event.priority is Priority.HIGH and row.priority != Priority.HIGH.value:
            values["tier_since"] = event.occurred_at  # the acknowledgement clock starts now
        values["priority"] = event.priority.value
        values["revision"] = event.revision
    if event.type is EventType.ALERT_RESOLVED and row.resolved_at is None:
        values["resolved_at"] = event.occurred_at
    if event.type is EventType.ALERT_ACKNOWLEDGED and row.acknowledged_at is None:
        values["acknowledged_at"] = event.occurred_at
    if values:
        conn.execute(
            sa.update(alert_confirmations).where(c.alert_id == event.alert_id).values(**values)
        )
    return int(row.tier)


def entitled_endpoints(
    conn: sa.Connection, patient_id: str, event_type: EventType, tier: int, at: datetime
) -> list[tuple[str, str]]:
    """(endpoint id, team id) of enabled endpoints entitled to an event about `patient_id`:
    their team follows the patient at or below `tier` and holds a current ``alerts`` grant at
    `at` (`consent_gate`)."""
    e, p = webhook_endpoints.c, care_team_patients.c
    rows = conn.execute(
        sa.select(e.id, e.team_id, e.event_types)
        .join(care_team_patients, p.team_id == e.team_id)
        .where(
            p.patient_id == patient_id,
            e.enabled.is_(True),
            p.escalation_tier + e.escalation_tier <= tier,
        )
        .order_by(e.id)
    )
    wanted = [(r.id, r.team_id) for r in rows if event_type.value in r.event_types.split()]
    allowed = consent_gate.permitted_teams(conn, patient_id, {team for _, team in wanted}, at)
    refused = {team for _, team in wanted} - allowed
    if refused:
        log.info("event for %d teams without a current alerts grant: not routed", len(refused))
    return [(endpoint, team) for endpoint, team in wanted if team in allowed]


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


def store_and_route(conn: sa.Connection, event: StoredEvent, endpoint_ids: Iterable[str]) -> int:
    """Store `event` (once) and a pending delivery to each endpoint; returns deliveries added."""
    row = asdict(event)
    row["page_members"] = (
        json.dumps({k: list(v) for k, v in event.page_members.items()}, sort_keys=True)
        if event.page_members is not None
        else None
    )
    row["type"] = event.type.value
    row["priority"] = event.priority.value if event.priority else None
    row["created_at"] = sa.func.now()
    insert_ignoring_duplicates(conn, webhook_events, [row], ["event_id"])
    deliveries: list[dict[str, object]] = [
        {
            "event_id": event.event_id,
            "endpoint_id": endpoint_id,
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": event.occurred_at,
            "created_at": sa.func.now(),
        }
        for endpoint_id in endpoint_ids
    ]
    return insert_ignoring_duplicates(
        conn, webhook_deliveries, deliveries, ["event_id", "endpoint_id"]
    )


def enqueue_events(
    conn: sa.Connection, events: Sequence[AlertEvent], now: datetime | None = None
) -> None:
    """The engine's `EventSink`: write deliveries for `events` in the caller's transaction.

    Consent is checked at `now` (the wall clock by default): the disclosure happens from now
    on, whatever time the event is about (a replay of history is routed under today's grants).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database failed (the caller's transaction rolls
            back, alert change included: nothing is half-written).
    """
    at = now if now is not None else datetime.now(UTC)
    for event in events:
        try:
            stored = validate(event)
        except InvalidFieldError as exc:
            _quarantine(conn, event, exc)
            continue
        tier = _track(conn, stored) if stored.type in ALERT_TYPES else 0
        if stored.patient_id is not None and acknowledgeable(stored.type, stored.priority):
            # Who each team pages now: each of them gets their own acknowledgement link.
            stored = replace(stored, page_members=members_to_page(conn, stored.patient_id, tier))
        if stored.patient_id is None:
            log.warning("event %s has no patient: no team to route it to", stored.event_id)
            targets: list[str] = []
        else:
            targets = [
                e for e, _ in entitled_endpoints(conn, stored.patient_id, stored.type, tier, at)
            ]
            if not targets:
                # Kept (the event row) but heard by nobody: worth a line in the log.
                log.warning(
                    "event %s (%s): no endpoint is entitled to it", stored.event_id, stored.type
                )
        store_and_route(conn, stored, targets)
