"""The technical alarm `delivery.failing` (IEC 60601-1-8 technical alarm condition).

Raised to the other enabled endpoints of the failing endpoint's team, ignoring their event
filters (a technical alarm cannot be unsubscribed): once per failing streak when an endpoint has
failed for `WorkerConfig.failing_alarm_after`, and again when it is disabled (410 Gone, or a
delivery exhausted its retries). `revision` counts the alarms raised for that endpoint, so each
alarm has its own deterministic event id.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from alerts.delivery.outbox import store_and_route
from alerts.delivery.payload import StoredEvent
from alerts.delivery.tables import CANCELLED, PENDING, webhook_deliveries, webhook_events
from alerts.events import EventType, Priority, event_id_for
from careteam.tables import webhook_endpoints

log = logging.getLogger(__name__)


def _alarms(conn: sa.Connection, endpoint_id: str, since: datetime | None = None) -> int:
    e = webhook_events.c
    stmt = (
        sa.select(sa.func.count())
        .select_from(webhook_events)
        .where(e.type == EventType.DELIVERY_FAILING.value, e.subject_id == endpoint_id)
    )
    if since is not None:
        stmt = stmt.where(e.occurred_at >= since)
    return int(conn.execute(stmt).scalar_one())


def raise_alarm(conn: sa.Connection, endpoint_id: str, team_id: str, at: datetime) -> StoredEvent:
    """Store a `delivery.failing` event about `endpoint_id` and route it to the team's others."""
    w = webhook_endpoints.c
    revision = _alarms(conn, endpoint_id) + 1
    others = conn.execute(
        sa.select(w.id).where(w.team_id == team_id, w.id != endpoint_id, w.enabled.is_(True))
    ).scalars()
    alarm = StoredEvent(
        event_id=event_id_for(EventType.DELIVERY_FAILING, endpoint_id, revision),
        type=EventType.DELIVERY_FAILING,
        occurred_at=at,
        patient_id=None,
        alert_id=None,
        rule_id=None,
        priority=Priority.HIGH,
        revision=revision,
        subject_id=endpoint_id,
    )
    if store_and_route(conn, alarm, list(others)) == 0:
        log.error("endpoint %s: delivery.failing has no other endpoint to go to", endpoint_id)
    return alarm


def raise_failing_once(
    conn: sa.Connection, endpoint_id: str, team_id: str, at: datetime, failing_since: datetime
) -> bool:
    """Raise `delivery.failing` unless one was raised during this failing streak already."""
    if _alarms(conn, endpoint_id, since=failing_since) > 0:
        return False
    raise_alarm(conn, endpoint_id, team_id, at)
    log.error("endpoint %s failing since %s", endpoint_id, failing_since.isoformat())
    return True


def disable_and_alarm(
    conn: sa.Connection, endpoint_id: str, team_id: str, at: datetime, reason: str
) -> None:
    """Disable an endpoint, cancel its pending deliveries and raise `delivery.failing`."""
    w, d = webhook_endpoints.c, webhook_deliveries.c
    conn.execute(
        sa.update(webhook_endpoints)
        .where(w.id == endpoint_id)
        .values(enabled=False, disabled_reason=reason, disabled_at=at)
    )
    conn.execute(
        sa.update(webhook_deliveries)
        .where(d.endpoint_id == endpoint_id, d.status == PENDING)
        .values(status=CANCELLED, last_error=f"endpoint disabled: {reason}", lease_until=None)
    )
    raise_alarm(conn, endpoint_id, team_id, at)
    log.error("endpoint %s disabled: %s", endpoint_id, reason)
