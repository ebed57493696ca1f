"""What a care team (and the API) can see of its endpoints, and recovery after an outage.

`endpoint_health` is the read the API serves for "is our webhook working" (the technical alarm
`delivery.failing` is also visible here as `enabled = False` with the reason). `requeue_endpoint`
is Svix-style recovery: after a team fixes its receiver and re-enables the endpoint, the
deliveries that failed or were cancelled while it was down are sent again (same `webhook-id`,
so receivers that did get some of them deduplicate).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery.tables import (
    CANCELLED,
    FAILED,
    PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
)
from careteam.tables import webhook_endpoints


@dataclass(frozen=True, slots=True)
class EndpointHealth:
    """One endpoint's delivery state.

    Attributes:
        failing_since: start of the current run of failed attempts, None when the last succeeded.
        pending: deliveries waiting for an attempt or a retry.
        last_status_code: HTTP status of the latest attempt, if a response arrived.
    """

    endpoint_id: str
    url: str
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    pending: int
    last_attempt_at: datetime | None
    last_outcome: str | None
    last_status_code: int | None


def endpoint_health(conn: sa.Connection, team_id: str) -> list[EndpointHealth]:
    """The health of every endpoint of `team_id`, ordered by endpoint id."""
    w, d, a = webhook_endpoints.c, webhook_deliveries.c, webhook_attempts.c
    pending = (
        sa.select(sa.func.count())
        .where(d.endpoint_id == w.id, d.status == PENDING)
        .correlate(webhook_endpoints)
        .scalar_subquery()
    )
    inner = webhook_attempts.alias("inner_attempts")
    last_id = (
        sa.select(sa.func.max(inner.c.id))
        .where(inner.c.endpoint_id == w.id)
        .correlate(webhook_endpoints)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(
            w.id,
            w.url,
            w.enabled,
            w.disabled_reason,
            w.failing_since,
            pending.label("n"),
            a.started_at,
            a.outcome,
            a.status_code,
        )
        .select_from(webhook_endpoints)
        .outerjoin(webhook_attempts, a.id == last_id)
        .where(w.team_id == team_id)
        .order_by(w.id)
    )
    return [
        EndpointHealth(
            r.id,
            r.url,
            r.enabled,
            r.disabled_reason,
            r.failing_since,
            r.n,
            r.started_at,
            r.outcome,
            r.status_code,
        )
        for r in rows
    ]


def requeue_endpoint(
    conn: sa.Connection, endpoint_id: str, at: datetime, since: datetime | None = None
) -> int:
    """Re-enable an endpoint and requeue its failed and cancelled deliveries; returns how many.

    Only deliveries of events that occurred at or after `since` are requeued, when given.

    Raises:
        NotFoundError: unknown endpoint.
    """
    endpoints.set_endpoint_enabled(conn, endpoint_id, True, at)
    d, e = webhook_deliveries.c, webhook_events.c
    which = sa.select(d.id).where(d.endpoint_id == endpoint_id, d.status.in_([FAILED, CANCELLED]))
    if since is not None:
        which = which.join(webhook_events, e.event_id == d.event_id).where(e.occurred_at >= since)
    result = conn.execute(
        sa.update(webhook_deliveries)
        .where(d.id.in_(which.scalar_subquery()))
        .values(status=PENDING, attempts=0, next_attempt_at=at, lease_until=None)
    )
    return max(result.rowcount, 0)
