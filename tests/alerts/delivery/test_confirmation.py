"""Confirmed delivery: acknowledgement (function and signed callback over real HTTP) and
escalation of unacknowledged high-priority alerts to the next tier."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from alerts.delivery.ack_app import create_app
from alerts.delivery.confirmation import acknowledge
from alerts.delivery.errors import AcknowledgementRefusedError, NotFoundError
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.payload import LinkConfig
from alerts.delivery.worker import DeliveryWorker
from alerts.events import AlertEvent, EventType, Priority, event_id_for
from careteam import registry
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
    assert "acknowledge" in data["links"]
    # Tier 1 = the health centre's tier-0 members, and the hospital's tier-1 supervisor.
    assert data["page_member_ids"] == [world.backup.member_id]
    to_primary = received(receiver, "/primary")[-1]
    assert to_primary["type"] == "alert.escalated"
    assert to_primary["data"]["page_member_ids"] == [supervisor]  # type: ignore[index]
    assert kinds(receiver, "/stranger") == []
    # No tier above 1 follows p1: nothing more to escalate to.
    clock.advance(10 * ACK_TIMEOUT_S)
    assert world.worker.escalate() == 0


def test_no_escalation_when_acknowledged_through_the_callback(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, world: World
) -> None:
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    world.worker.run_once()
    (opened,) = received(receiver, "/primary")
    link = opened["data"]["links"]["acknowledge"]  # type: ignore[index]
    assert link.startswith(world.ack_url)
    with httpx.Client(timeout=5) as http:
        wrong_team = http.post(link, json={"member_id": world.backup.member_id})
        forged = http.post(link[:-4] + "AAAA", json={"member_id": world.primary.member_id})
        unknown = http.post(link, json={"member_id": "nobody"})
        malformed = http.post(link, json={"member_id": world.primary.member_id, "x": 1})
        first = http.post(link, json={"member_id": world.primary.member_id})
        again = http.post(link, json={"member_id": world.primary.member_id})
    assert (wrong_team.status_code, wrong_team.json()["detail"]["field"]) == (403, "member_id")
    assert (forged.status_code, forged.json()["detail"]["field"]) == (403, "token")
    assert (unknown.status_code, unknown.json()["detail"]["field"]) == (404, "member_id")
    assert malformed.status_code == 422
    assert first.json() == {"alert_id": "a1", "acknowledged": True, "first": True}
    assert again.json() == {"alert_id": "a1", "acknowledged": True, "first": False}
    clock.advance(5 * ACK_TIMEOUT_S)
    assert world.worker.escalate() == 0
    world.worker.run_once()
    acked = received(receiver, "/primary")[-1]
    assert acked["type"] == "alert.acknowledged"
    assert acked["data"]["subject_id"] == world.primary.member_id  # type: ignore[index]
    assert kinds(receiver, "/backup") == []


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
