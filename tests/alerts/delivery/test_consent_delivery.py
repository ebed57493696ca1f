"""Delivery checks consent: a team without a current `alerts` grant gets no webhook; a grant
that expires before the send cancels the delivery; a withdrawal cancels what is pending at
once and the team receives nothing after it. Sends and cancellations are in the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from alerts.delivery.consent_gate import withdraw_consent
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.tables import webhook_deliveries
from alerts.delivery.worker import DeliveryWorker
from careteam import audit_store, consent_store, registry
from careteam.audit import Actor
from careteam.consent import GrantRequest
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.support.record import TEST_ACTOR, ensure_patient


@pytest.fixture
def worker(db: sa.Engine, clock: FakeClock) -> Iterator[DeliveryWorker]:
    w = b.worker(db, clock, timeout_s=2.0)
    yield w
    w.close()


def _team(conn: sa.Connection, name: str, at: object) -> str:
    inst = registry.add_institution(conn, f"{name} hospital", "hospital_clinic", at)  # type: ignore[arg-type]
    team = registry.add_team(conn, inst, name, at)  # type: ignore[arg-type]
    registry.assign_patient(conn, team, "p1", at)  # type: ignore[arg-type]
    return team


def _statuses(db: sa.Engine) -> dict[str, tuple[str, str | None]]:
    d = webhook_deliveries.c
    with db.connect() as conn:
        rows = conn.execute(sa.select(d.event_id, d.endpoint_id, d.status, d.last_error)).all()
    return {f"{r.event_id[:8]}@{r.endpoint_id}": (r.status, r.last_error) for r in rows}


def test_grant_expiry_and_withdrawal_against_delivery(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    t0 = clock()
    with db.begin() as conn:
        ensure_patient(conn, "p1", t0)
        granted, ungranted, expiring = (_team(conn, n, t0) for n in ("granted", "none", "soon"))
        endpoints = {
            team: b.add_endpoint(conn, b.Team("", team, ""), receiver.url(f"/{path}"), t0)
            for team, path in ((granted, "a"), (ungranted, "b"), (expiring, "c"))
        }
        kept = consent_store.grant(
            conn,
            GrantRequest("p1", "team", granted, ("alerts",), t0, None, "paper"),
            actor=TEST_ACTOR,
            at=t0,
        )
        consent_store.grant(
            conn,
            GrantRequest(
                "p1", "team", expiring, ("alerts",), t0, t0 + timedelta(seconds=60), "app"
            ),
            actor=TEST_ACTOR,
            at=t0,
        )
        # A grant of other kinds is no grant for alerts.
        consent_store.grant(
            conn,
            GrantRequest("p1", "team", ungranted, ("glucose",), t0, None, "paper"),
            actor=TEST_ACTOR,
            at=t0,
        )
        first = b.opened("a1", "p1", t0)
        enqueue_events(conn, [first], now=t0)
    routed = {key.split("@")[1] for key in _statuses(db)}
    assert routed == {endpoints[granted].endpoint_id, endpoints[expiring].endpoint_id}

    clock.advance(120)  # the expiring grant ended before the worker got to its delivery
    assert worker.run_once() == 2
    assert receiver.bodies("/a") and not receiver.bodies("/b") and not receiver.bodies("/c")
    cancelled = _statuses(db)[f"{first.event_id[:8]}@{endpoints[expiring].endpoint_id}"]
    assert cancelled == ("cancelled", "consent: expired")

    with db.begin() as conn:
        second = b.opened("a2", "p1", clock())
        enqueue_events(conn, [second], now=clock())
        withdrawal = withdraw_consent(
            conn, kept.consent_id, actor=Actor("patient", "p1"), at=clock(), reason="moved away"
        )
    assert withdrawal.cancelled == 1
    assert _statuses(db)[f"{second.event_id[:8]}@{endpoints[granted].endpoint_id}"] == (
        "cancelled",
        "consent: withdrawn",
    )
    clock.advance(10)
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a3", "p1", clock())], now=clock())
    assert worker.run_once() == 0
    assert len(receiver.bodies("/a")) == 1  # nothing after the withdrawal

    with db.connect() as conn:
        trail = [(e.action, e.entity_id, e.outcome) for e in audit_store.entries(conn, limit=100)]
        assert audit_store.verify(conn).ok
    assert ("disclosure.webhook", endpoints[granted].endpoint_id, "success") in trail
    assert ("delivery.cancel", expiring, "success") in trail
    assert ("delivery.cancel", granted, "success") in trail
    assert ("consent.withdraw", kept.consent_id, "success") in trail
    assert not any(a == "disclosure.webhook" and e != endpoints[granted].endpoint_id
                   for a, e, _ in trail)  # fmt: skip
