"""Confirmed delivery: acknowledgement (function and signed callback over real HTTP) and
escalation of unacknowledged high-priority alerts to the next tier."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from alerts.delivery import ack_token
from alerts.delivery.ack_app import create_app
from alerts.delivery.confirmation import acknowledge
from alerts.delivery.errors import AcknowledgementRefusedError, NotFoundError
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.payload import LinkConfig
from alerts.delivery.tables import alert_confirmations
from alerts.delivery.worker import DeliveryWorker
from alerts.events import AlertEvent, EventType, Priority, event_id_for
from careteam import audit_store, registry
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver, UvicornThread

ACK_TIMEOUT_S = 900  # the worker's default escalation policy: 15 minutes


@dataclass
class World:
    primary: b.Team
    backup: b.Team
    stranger: b.Team
    worker: DeliveryWorker
    ack_url: str


@pytest.fixture
def world(db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver) -> Iterator[World]:
    with db.begin() as conn:
        primary = b.make_team(conn, clock(), "p1", name="hospital")
        backup = b.make_team(conn, clock(), "p1", tier=1, name="health centre")
        stranger = b.make_team(conn, clock(), "p2", name="elsewhere")
        b.add_endpoint(conn, primary, receiver.url("/primary"), clock())
        b.add_endpoint(conn, backup, receiver.url("/backup"), clock())
        b.add_endpoint(conn, stranger, receiver.url("/stranger"), clock())
    server = UvicornThread(create_app(db, b.ACK_KEY, clock))
    server.start()
    ack_url = f"http://127.0.0.1:{server.port}"
    links = LinkConfig("https://api.example.org/v1", ack_url, b.ACK_KEY)
    worker = b.worker(db, clock, links=links)
    yield World(primary, backup, stranger, worker, ack_url)
    worker.close()
    server.stop()


def received(receiver: ScriptedReceiver, path: str) -> list[dict[str, object]]:
    return [json.loads(body) for body in receiver.bodies(path)]


def kinds(receiver: ScriptedReceiver, path: str) -> list[str]:
    return [str(e["type"]) for e in received(receiver, path)]


def test_escalation_fires_when_nobody_acknowledges(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, world: World
) -> None:
    with db.begin() as conn:
        supervisor = registry.add_member(
            conn, world.primary.team_id, "Dr Supervisor", role="physician", tier=1, at=clock()
        )
        enqueue_events(
            conn, [b.opened("a1", "p1", clock()), b.opened("a2", "p1", clock(), Priority.MEDIUM)]
        )
    world.worker.run_once()
    assert kinds(receiver, "/primary") == ["alert.opened", "alert.opened"]
    assert kinds(receiver, "/backup") == []
    clock.advance(ACK_TIMEOUT_S - 1)
    assert world.worker.escalate() == 0
    clock.advance(1)
    assert world.worker.escalate() == 1  # the high-priority one only
    world.worker.run_once()
    (to_backup,) = received(receiver, "/backup")
    assert to_backup["type"] == "alert.escalated"
    data = to_backup["data"]
    assert isinstance(data, dict)
    assert (data["alert_id"], data["escalation_tier"]) == ("a1", 1)
    # Tier 1 = the health centre's tier-0 members, and the hospital's tier-1 supervisor; each
    # paged member gets their own link, in their own team's webhook only.
    assert data["page_member_ids"] == [world.backup.member_id]
    assert set(data["links"]["acknowledge_members"]) == {world.backup.member_id}
    to_primary = received(receiver, "/primary")[-1]
    assert to_primary["type"] == "alert.escalated"
    assert to_primary["data"]["page_member_ids"] == [supervisor]  # type: ignore[index]
    assert set(to_primary["data"]["links"]["acknowledge_members"]) == {supervisor}  # type: ignore[index]
    assert kinds(receiver, "/stranger") == []
    # No tier above 1 follows p1: nothing more to escalate to.
    clock.advance(10 * ACK_TIMEOUT_S)
    assert world.worker.escalate() == 0


def test_no_escalation_when_acknowledged_through_the_members_own_link(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, world: World
) -> None:
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    world.worker.run_once()
    (opened,) = received(receiver, "/primary")
    links = opened["data"]["links"]["acknowledge_members"]  # type: ignore[index]
    assert set(links) == {world.primary.member_id}  # one link per paged member
    link = links[world.primary.member_id]
    assert link.startswith(world.ack_url)
    event_id = str(opened["data"]["event_id"])  # type: ignore[index]

    def crafted(member_id: str) -> str:  # signed with the real key: only membership refuses it
        claims = ack_token.AckClaims(
            event_id, "a1", world.primary.team_id, member_id, clock() + timedelta(days=1)
        )
        return f"{world.ack_url}/ack/{ack_token.issue(claims, b.ACK_KEY)}"

    with httpx.Client(timeout=5) as http:
        forged = http.post(link[:-4] + "AAAA")
        known_but_not_paged = http.post(crafted(world.backup.member_id))
        unknown_member = http.post(crafted("nobody"))
        first = http.post(link, json={"member_id": world.backup.member_id})  # body is ignored
        again = http.post(link)
    refusals = [forged, known_but_not_paged, unknown_member, again]
    # Finding 5 (issue 14): the same status and body whatever the reason.
    assert {(r.status_code, r.content) for r in refusals} == {
        (403, b'{"detail":"acknowledgement refused"}')
    }
    assert first.json() == {"alert_id": "a1", "acknowledged": True, "first": True}
    clock.advance(5 * ACK_TIMEOUT_S)
    assert world.worker.escalate() == 0
    world.worker.run_once()
    acked = received(receiver, "/primary")[-1]
    assert acked["type"] == "alert.acknowledged"
    assert acked["data"]["subject_id"] == world.primary.member_id  # type: ignore[index]
    assert kinds(receiver, "/backup") == []
    with db.connect() as conn:
        row = conn.execute(
            sa.select(alert_confirmations).where(alert_confirmations.c.alert_id == "a1")
        ).one()
        trail = [
            (e.actor_id, e.outcome, e.source, json.loads(e.detail).get("via"))
            for e in audit_store.entries(conn, patient_id="p1", limit=200)
            if e.action == "alert.acknowledge"
        ]
    assert (row.acknowledged_by, row.acknowledged_via, row.acknowledged_source) == (
        world.primary.member_id,
        "link",
        "127.0.0.1",
    )
    assert (world.primary.member_id, "success", "127.0.0.1", "link") in trail
    assert (world.backup.member_id, "denied", "127.0.0.1", "link") in trail


def test_acknowledge_checks_who_may_confirm(db: sa.Engine, clock: FakeClock, world: World) -> None:
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    with db.begin() as conn:
        with pytest.raises(AcknowledgementRefusedError) as refused:
            acknowledge(conn, "a1", world.stranger.member_id, clock())
        assert refused.value.field == "member_id"
        with pytest.raises(NotFoundError) as missing:
            acknowledge(conn, "no-such-alert", world.primary.member_id, clock())
        assert missing.value.field == "alert_id"
        # The backup institution follows the patient too: its members may acknowledge.
        assert acknowledge(conn, "a1", world.backup.member_id, clock()) is True
        assert acknowledge(conn, "a1", world.primary.member_id, clock()) is False


def test_a_resolved_alert_does_not_escalate(db: sa.Engine, clock: FakeClock, world: World) -> None:
    resolved = AlertEvent(
        event_id_for(EventType.ALERT_RESOLVED, "a1", 2),
        EventType.ALERT_RESOLVED,
        clock(),
        "p1",
        "a1",
        "bp.stage2",
        Priority.HIGH,
        2,
    )
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", clock()), resolved])
    clock.advance(2 * ACK_TIMEOUT_S)
    assert world.worker.escalate() == 0


def test_an_alert_raised_to_high_starts_its_clock_then(
    db: sa.Engine, clock: FakeClock, world: World
) -> None:
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", clock(), Priority.MEDIUM)])
    clock.advance(ACK_TIMEOUT_S)
    updated = AlertEvent(
        event_id_for(EventType.ALERT_UPDATED, "a1", 2),
        EventType.ALERT_UPDATED,
        clock(),
        "p1",
        "a1",
        "bp.stage2",
        Priority.HIGH,
        2,
    )
    with db.begin() as conn:
        enqueue_events(conn, [updated])
    assert world.worker.escalate() == 0
    clock.advance(ACK_TIMEOUT_S)
    assert world.worker.escalate() == 1
