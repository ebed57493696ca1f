"""Every link of a delivered webhook resolves for a member of the receiving team: the engine
raises a real alert, the delivery worker sends it over HTTP to a loopback receiver, and the
links in the body (``alert``, ``acknowledge``) are followed against the live API."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.payload import LinkConfig
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.worker import DeliveryWorker, WorkerConfig
from alerts.engine.runner import Runner
from api.tokens import Actor
from careteam import registry
from devices.reading import Kind
from ingest.store import make_engine, write_batch
from tests.alerts.delivery.builders import BOX
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.api.record import METER, reading
from tests.api.support import migrate_all, serve, token
from tests.support import servers
from tests.support.record import follow

ACK_KEY = "ack-key-for-the-links-test-0123456789"


@pytest.fixture
def engine(postgres: servers.PostgresServer) -> Iterator[sa.Engine]:
    url = postgres.create_database(f"links_{uuid.uuid4().hex[:12]}")
    migrate_all(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def receiver() -> Iterator[ScriptedReceiver]:
    server = ScriptedReceiver()
    server.start()
    yield server
    server.stop()


def test_every_link_of_a_delivered_webhook_resolves(
    engine: sa.Engine, receiver: ScriptedReceiver
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        inst = registry.add_institution(conn, "City Hospital", "hospital_clinic", now)
        team = registry.add_team(conn, inst, "Diabetes clinic", now)
        nurse = registry.add_member(conn, team, "Nurse Lin", role="nurse", tier=0, at=now)
        other_inst = registry.add_institution(conn, "Elsewhere", "family_practice", now)
        other_team = registry.add_team(conn, other_inst, "Other", now)
        outsider = registry.add_member(conn, other_team, "Dr Out", role="physician", tier=0, at=now)
        follow(conn, team, "P9", now)
        follow(conn, other_team, "P9", now, kinds=("glucose",))
        endpoints.register_endpoint(
            conn,
            team,
            receiver.url(),
            ["alert.opened"],
            at=now,
            policy=SsrfPolicy(allow_loopback=True),
            box=BOX,
        )
    hypo = reading(
        "P9", METER, Kind.GLUCOSE, {"glucose_mmol_l": 2.4}, seq=40, at=now - timedelta(minutes=5)
    )
    write_batch(engine, [hypo], [], now=now)
    Runner(engine, sink=enqueue_events).step(now)
    with serve(engine, ack_key=ACK_KEY) as api:
        config = WorkerConfig(
            links=LinkConfig(f"{api}/v1", ack_base_url=f"{api}/v1", ack_key=ACK_KEY.encode()),
            secrets=BOX,
            policy=SsrfPolicy(allow_loopback=True),
            timeout_s=5.0,
            lease_s=30,
        )
        worker = DeliveryWorker(engine, config, lambda: datetime.now(UTC), random.Random(1))
        try:
            assert worker.run_once() == 1
        finally:
            worker.close()
        (delivered,) = receiver.received
        event = json.loads(delivered.body)
        links = event["data"]["links"]
        assert set(links) == {"alert", "acknowledge_members"}
        # One link per paged member: the nurse's own.
        assert set(links["acknowledge_members"]) == {nurse}
        links["acknowledge"] = links["acknowledge_members"][nurse]
        nurse_reads = {
            "Authorization": "Bearer " + token(Actor.MEMBER, nurse, "user/*.read user/Flag.write")
        }
        alert = httpx.get(links["alert"], headers=nurse_reads)
        assert alert.status_code == 200, alert.text
        assert alert.json()["alert_id"] == event["data"]["alert_id"]
        assert alert.json()["patient"] == event["data"]["patient"]
        for url in alert.json()["links"]["readings"]:
            assert httpx.get(url, headers=nurse_reads).status_code == 200
        outsider_h = {
            "Authorization": "Bearer "
            + token(Actor.MEMBER, outsider, "user/*.read user/Flag.write")
        }
        assert httpx.get(links["alert"], headers=outsider_h).status_code == 403  # no alerts grant
        assert httpx.post(links["acknowledge"], json={}, headers=outsider_h).status_code == 403
        assert httpx.post(links["acknowledge"], json={}).status_code == 401
        acked = httpx.post(links["acknowledge"], json={"note": "on my way"}, headers=nurse_reads)
        assert acked.status_code == 200, acked.text
        assert acked.json() == {
            "alert_id": event["data"]["alert_id"],
            "action": "acknowledge",
            "first": True,
        }
        detail = httpx.get(links["alert"], headers=nurse_reads).json()
        assert detail["acknowledged"] == {
            "member_id": nurse,
            "at": detail["acknowledged"]["at"],
            "note": "on my way",
        }
        forged = links["acknowledge"][:-4] + "AAAA"
        assert httpx.post(forged, json={}, headers=nurse_reads).status_code == 403
