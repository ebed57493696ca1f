"""Delivery over real HTTP to a real uvicorn receiver on loopback, from real PostgreSQL.

The worker's clock is a fake that starts at the real time and is moved by the test (the retry
schedule is a short test-scale one), so receivers still check timestamps against the real time.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from alerts.delivery import endpoints, signing
from alerts.delivery.migrations import migrate
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.ssrf import IPAddress
from alerts.delivery.status import endpoint_health, requeue_endpoint
from alerts.delivery.tables import webhook_attempts, webhook_deliveries
from alerts.delivery.worker import DeliveryWorker
from careteam.tables import webhook_endpoints
from ingest.store import make_engine
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.alerts.delivery.test_signing import spec_verify
from tests.support.servers import free_port


@pytest.fixture
def worker(db: sa.Engine, clock: FakeClock) -> Iterator[DeliveryWorker]:
    w = b.worker(db, clock, timeout_s=0.5)
    yield w
    w.close()


def setup_one(db: sa.Engine, clock: FakeClock, url: str, alerts: int = 1) -> tuple[str, list[str]]:
    """A team following p1 with one endpoint at `url`, and `alerts` opened alerts."""
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        secret = b.add_endpoint(conn, team, url, clock()).secret
        events = [b.opened(f"a{i}", "p1", clock()) for i in range(alerts)]
        enqueue_events(conn, events)
    return secret, [e.event_id for e in events]


def attempts(db: sa.Engine) -> list[sa.Row[tuple[object, ...]]]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(webhook_attempts).order_by(webhook_attempts.c.id)))


def delivery(db: sa.Engine) -> sa.Row[tuple[object, ...]]:
    with db.connect() as conn:
        return conn.execute(sa.select(webhook_deliveries)).one()


def test_delivered_signed_and_recorded(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    secret, (event_id,) = setup_one(db, clock, receiver.url())
    assert worker.run_once() == 1
    (got,) = receiver.received
    assert got.headers["webhook-id"] == event_id
    assert Webhook(secret).verify(got.body, got.headers)["data"]["alert_id"] == "a0"
    assert spec_verify(secret, got.headers, got.body, int(time.time()))
    (attempt,) = attempts(db)
    assert (attempt.outcome, attempt.status_code, attempt.attempt_number) == ("success", 204, 1)
    assert attempt.latency_ms > 0
    assert delivery(db).status == "delivered"
    assert worker.run_once() == 0  # nothing left


def test_500_is_retried_on_schedule_with_the_same_webhook_id(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    secret, (event_id,) = setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "status:500")
    assert worker.run_once() == 1
    assert delivery(db).status == "pending"
    assert worker.run_once() == 0  # not due yet: the next attempt is 2 s +-20 % later
    clock.advance(2.5)
    assert worker.run_once() == 1
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == event_id
    assert int(second.headers["webhook-timestamp"]) > int(first.headers["webhook-timestamp"])
    assert first.body == second.body
    assert Webhook(secret).verify(second.body, second.headers)
    assert [(a.outcome, a.status_code) for a in attempts(db)] == [
        ("http_status", 500),
        ("success", 204),
    ]


def test_429_retry_after_is_honoured(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "status:429:retry-after=30")
    worker.run_once()
    row = delivery(db)
    assert row.next_attempt_at == clock() + timedelta(seconds=30)
    assert attempts(db)[0].retry_after_s == 30.0
    clock.advance(29)
    assert worker.run_once() == 0
    clock.advance(1)
    assert worker.run_once() == 1
    assert delivery(db).status == "delivered"


def test_503_retry_after_is_honoured_too(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "status:503:retry-after=12")
    worker.run_once()
    assert delivery(db).next_attempt_at == clock() + timedelta(seconds=12)


def test_redirects_are_not_followed(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "redirect")
    worker.run_once()
    assert [r.path for r in receiver.received] == ["/hook"]
    assert (attempts(db)[0].outcome, attempts(db)[0].status_code) == ("redirect", 301)
    clock.advance(3)
    worker.run_once()
    assert [r.path for r in receiver.received] == ["/hook", "/hook"]
    assert delivery(db).status == "delivered"


def test_hanging_receiver_times_out_and_is_retried(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.hang_s = 2.0
    receiver.plan("/hook", "hang")
    worker.run_once()
    assert attempts(db)[0].outcome == "timeout"
    assert delivery(db).status == "pending"
    clock.advance(3)
    worker.run_once()
    assert delivery(db).status == "delivered"


def test_oversized_response_is_cut_off(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "big")
    worker.run_once()
    (attempt,) = attempts(db)
    assert (attempt.outcome, attempt.status_code) == ("success", 200)
    assert "cut off at 65536 bytes" in attempt.error


def test_410_disables_the_endpoint_and_alarms_the_teams_other_endpoints(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        gone = b.add_endpoint(conn, team, receiver.url("/gone"), clock()).endpoint_id
        b.add_endpoint(conn, team, receiver.url("/ops"), clock(), types=("delivery.failing",))
        enqueue_events(conn, [b.opened("a1", "p1", clock()), b.opened("a2", "p1", clock())])
    receiver.plan("/gone", "status:410")
    worker.run_once()  # one 410; the second delivery to /gone is cancelled, the alarm queued
    worker.run_once()  # the alarm goes out
    assert [r.path for r in receiver.received] == ["/gone", "/ops"]
    alarm = json.loads(receiver.received[1].body)
    assert alarm["type"] == "delivery.failing"
    assert alarm["data"]["subject_id"] == gone and alarm["data"]["priority"] == "high"
    with db.connect() as conn:
        endpoint = conn.execute(
            sa.select(webhook_endpoints).where(webhook_endpoints.c.id == gone)
        ).one()
        statuses = sorted(
            conn.execute(
                sa.select(webhook_deliveries.c.status).where(
                    webhook_deliveries.c.endpoint_id == gone
                )
            ).scalars()
        )
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert statuses == ["cancelled", "failed"]
    with db.connect() as conn:
        health = {h.endpoint_id: h for h in endpoint_health(conn, team.team_id)}
    assert not health[gone].enabled and health[gone].last_status_code == 410
    assert health[gone].failing_since is not None and health[gone].pending == 0
    # A disabled endpoint is no longer entitled to new events.
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a3", "p1", clock())])
    assert worker.run_once() == 0
    # The team fixes its receiver and re-enables: what failed or was cancelled goes out again.
    with db.begin() as conn:
        assert requeue_endpoint(conn, gone, clock()) == 2
    assert worker.run_once() == 2
    assert sorted(r.path for r in receiver.received) == ["/gone", "/gone", "/gone", "/ops"]
    with db.connect() as conn:
        assert all(
            h.failing_since is None and h.enabled for h in endpoint_health(conn, team.team_id)
        )


def test_sustained_failure_alarms_early_then_disables_at_exhaustion(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        failing = b.add_endpoint(conn, team, dead, clock()).endpoint_id
        b.add_endpoint(conn, team, receiver.url("/ops"), clock(), types=("alert.resolved",))
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    w = b.worker(db, clock, failing_alarm_after_s=5.0)
    alarms_after_each_attempt = []
    try:
        for _ in range(b.SHORT.max_attempts):
            assert w.run_once() == 1  # the attempt to the dead endpoint
            w.run_once()  # any alarm it raised
            alarms_after_each_attempt.append(len(receiver.received))
            clock.advance(10)
    finally:
        w.close()
    assert [a.outcome for a in attempts(db) if a.endpoint_id == failing] == ["network"] * 4
    # Failing for 10 s (> 5 s) at the second attempt: one alarm for the streak; then one more
    # when the fourth attempt exhausts the schedule and disables the endpoint.
    assert alarms_after_each_attempt == [0, 1, 1, 2]
    alarms = [json.loads(r.body) for r in receiver.received]
    # Technical alarms ignore event filters: /ops subscribed to alert.resolved only.
    assert [(a["type"], a["data"]["subject_id"], a["data"]["revision"]) for a in alarms] == [
        ("delivery.failing", failing, 1),
        ("delivery.failing", failing, 2),
    ]
    with db.connect() as conn:
        row = conn.execute(
            sa.select(webhook_endpoints).where(webhook_endpoints.c.id == failing)
        ).one()
    assert not row.enabled and "4 times" in row.disabled_reason
    assert row.failing_since is not None


def test_slow_drip_response_is_cut_off_at_the_time_budget(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    setup_one(db, clock, receiver.url())
    receiver.plan("/hook", "drip")
    worker.run_once()
    (attempt,) = attempts(db)
    assert (attempt.outcome, attempt.status_code) == ("success", 200)
    assert "cut off at the time budget" in attempt.error


def test_receiver_down_then_back_loses_nothing(
    db: sa.Engine, clock: FakeClock, worker: DeliveryWorker
) -> None:
    receiver = ScriptedReceiver()
    secret, event_ids = setup_one(db, clock, receiver.url(), alerts=5)
    assert worker.run_once() == 5  # receiver not started: connection refused
    assert {a.outcome for a in attempts(db)} == {"network"}
    receiver.start()
    try:
        clock.advance(3)
        assert worker.run_once() == 5
    finally:
        receiver.stop()
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(event_ids)
    for got in receiver.received:
        assert Webhook(secret).verify(got.body, got.headers)


def test_secret_rotation_overlaps_then_ends(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoint = b.add_endpoint(conn, team, receiver.url(), clock())
        new = endpoints.rotate_secret(
            conn, endpoint.endpoint_id, clock(), timedelta(seconds=60), box=b.BOX
        )
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    worker.run_once()
    during = receiver.received[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (endpoint.secret, new):
        assert Webhook(secret).verify(during.body, during.headers)
    clock.advance(61)
    with db.begin() as conn:
        enqueue_events(conn, [b.opened("a2", "p1", clock())])
    worker.run_once()
    after = receiver.received[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert signing.verify(after.body, after.headers, [new])
    assert not spec_verify(endpoint.secret, after.headers, after.body, int(time.time()))


def test_send_time_resolution_is_checked_and_pinned(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver
) -> None:
    # Checked at send time and pinned (docs/threat-model.md, webhooks). `receiver.test` exists
    # only in this stub resolver: the request can only reach the receiver if the worker connects
    # to the address it checked, not to a new lookup.
    answers: dict[str, list[IPAddress]] = {"receiver.test": [ipaddress.ip_address("127.0.0.1")]}

    def resolver(host: str, port: int) -> list[IPAddress]:
        return answers.get(host, [])

    url = f"http://receiver.test:{receiver.port}/hook"
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoints.register_endpoint(
            conn,
            team.team_id,
            url,
            ["alert.opened"],
            at=clock(),
            policy=b.DEV,
            resolver=resolver,
            box=b.BOX,
        )
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    w = b.worker(db, clock, resolver=resolver)
    try:
        w.run_once()
        assert receiver.received[0].headers["host"] == f"receiver.test:{receiver.port}"
        answers["receiver.test"] = [ipaddress.ip_address("10.0.0.7")]  # rebinding
        with db.begin() as conn:
            enqueue_events(conn, [b.opened("a2", "p1", clock())])
        w.run_once()
    finally:
        w.close()
    assert len(receiver.received) == 1
    refused = attempts(db)[-1]
    assert refused.outcome == "refused" and "private-use address 10.0.0.7" in refused.error


def test_the_embedded_sqlite_store_works_too(
    tmp_path: Path, clock: FakeClock, receiver: ScriptedReceiver
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hv.db'}")
    try:
        migrate(engine)
        with engine.begin() as conn:
            team = b.make_team(conn, clock(), "p1")
            backup = b.make_team(conn, clock(), "p1", tier=1, name="backup")
            secret = b.add_endpoint(conn, team, receiver.url("/a"), clock()).secret
            b.add_endpoint(conn, backup, receiver.url("/b"), clock())
            enqueue_events(conn, [b.opened("a1", "p1", clock())])
            enqueue_events(conn, [b.opened("a1", "p1", clock())])  # replay absorbed
        w = b.worker(engine, clock)
        try:
            assert w.run_once() == 1
            clock.advance(3600)
            assert w.escalate() == 1
            assert w.run_once() == 2
        finally:
            w.close()
    finally:
        engine.dispose()
    assert sorted(r.path for r in receiver.received) == ["/a", "/a", "/b"]
    assert Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)


def test_ipv6_loopback_receiver(db: sa.Engine, clock: FakeClock, worker: DeliveryWorker) -> None:
    receiver = ScriptedReceiver(host="::1")
    receiver.start()
    try:
        secret, (event_id,) = setup_one(db, clock, receiver.url())
        assert worker.run_once() == 1
    finally:
        receiver.stop()
    (got,) = receiver.received
    assert got.headers["host"] == f"[::1]:{receiver.port}"
    assert Webhook(secret).verify(got.body, got.headers)["data"]["event_id"] == event_id


def test_a_hanging_endpoint_does_not_hold_up_other_teams(
    db: sa.Engine, clock: FakeClock, receiver: ScriptedReceiver, worker: DeliveryWorker
) -> None:
    with db.begin() as conn:
        slow_team = b.make_team(conn, clock(), "p1", name="slow")
        fast_team = b.make_team(conn, clock(), "p2", name="fast")
        b.add_endpoint(conn, slow_team, receiver.url("/slow"), clock())
        b.add_endpoint(conn, fast_team, receiver.url("/fast"), clock())
        enqueue_events(conn, [b.opened(f"s{i}", "p1", clock()) for i in range(3)])
        enqueue_events(conn, [b.opened("f0", "p2", clock())])
    receiver.hang_s = 2.0
    receiver.plan("/slow", "hang", "hang", "hang")
    assert worker.run_once() == 4
    paths = [r.path for r in receiver.received]
    # Served one after the other, /fast would come after the three timeouts of /slow.
    assert sorted(paths) == ["/fast", "/slow", "/slow", "/slow"]
    assert paths.index("/fast") < 3
