"""Issue 14 findings 3 and 4 on the real components: registration through `homevitals webhook
register` and sends by the delivery worker, on real PostgreSQL; the worker's log as a process.

No request may leave for a refused (or any non-loopback) address, so the in-process worker's
HTTP client is a tripwire: it records what the worker asked it to send and sends nothing. The
refusals must come before it; the allow-list case shows the worker reaching it, pinned.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alerts.delivery import endpoints
from alerts.delivery.cli import app
from alerts.delivery.guard import Resolver
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.settings import ConfigError, load_settings
from alerts.delivery.special_addresses import parse_allow_networks
from alerts.delivery.ssrf import IPAddress, SsrfPolicy
from alerts.delivery.tables import webhook_attempts
from alerts.delivery.worker import DeliveryWorker, WorkerConfig
from careteam import audit_store
from careteam.audit import AuditEntry
from careteam.tables import webhook_endpoints
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.alerts.delivery.test_worker_crash import worker_env

VECTORS = {
    "https://[2002:7f00:1::1]/hook": "6to4 address 2002:7f00:1::1 (embeds 127.0.0.1)",
    "https://192.0.0.8/hook": "IETF protocol assignments address 192.0.0.8",
    "https://[64:ff9b::7f00:1]/hook": "NAT64 well-known prefix address 64:ff9b::7f00:1",
    "https://[64:ff9b:1::a00:1]/hook": "NAT64 local-use prefix address",
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook": "Teredo address",
    "https://[::ffff:127.0.0.1]/hook": "IPv4-mapped address ::ffff:7f00:1 (embeds 127.0.0.1)",
    "https://[::127.0.0.1]/hook": "IPv4-compatible (deprecated) address ::7f00:1",
    "https://198.18.0.1/hook": "benchmarking address 198.18.0.1",
    "https://10.20.1.5/hook": "private-use address 10.20.1.5",
}


class Tripwire(httpx.BaseTransport):
    """Records each request the worker hands to its HTTP client; sends none."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        raise httpx.ConnectError("tripwire: no traffic leaves this test", request=request)


def _worker(
    db: sa.Engine, clock: FakeClock, policy: SsrfPolicy, tripwire: Tripwire, resolver: Resolver
) -> DeliveryWorker:
    config = WorkerConfig(
        links=b.LINKS, secrets=b.BOX, policy=policy, schedule=b.SHORT, timeout_s=1.0, lease_s=30
    )
    client = httpx.Client(transport=tripwire)
    return DeliveryWorker(db, config, clock, random.Random(1), resolver=resolver, client=client)


def _legacy_endpoint(conn: sa.Connection, team: b.Team, url: str, clock: FakeClock) -> str:
    """An endpoint row written as an older release's registration would have left it."""
    endpoint_id = str(uuid.uuid4())
    conn.execute(
        webhook_endpoints.insert().values(
            id=endpoint_id,
            team_id=team.team_id,
            url=url,
            event_types="alert.opened",
            escalation_tier=0,
            enabled=True,
            description="legacy",
            created_at=clock(),
        )
    )
    return endpoint_id


def test_registration_refuses_each_vector(pg_url: str, db: sa.Engine, clock: FakeClock) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
    runner = CliRunner()
    env = {"HV_DELIVERY_DATABASE_URL": pg_url, "HV_SECRETS_KEYS": b.SECRETS_KEYS}
    for url, reason in VECTORS.items():
        argv = ["register", team.team_id, url, "--event", "alert.opened"]
        done = runner.invoke(app, argv, env=env)
        assert done.exit_code == 2, (url, done.stdout)
        assert reason in done.stderr, done.stderr
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_endpoints)).scalar() == 0


def test_registration_inside_the_allow_list_is_audited(
    pg_url: str, db: sa.Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
    runner = CliRunner()
    argv = ["register", team.team_id, "https://10.20.1.5/hooks/tok3n", "--event", "alert.opened"]
    env = {
        "HV_DELIVERY_DATABASE_URL": pg_url,
        "HV_DELIVERY_ALLOW_CIDRS": "0.0.0.0/0",
        "HV_SECRETS_KEYS": b.SECRETS_KEYS,
    }
    refused = runner.invoke(app, argv, env=env)
    assert refused.exit_code == 2 and "HV_DELIVERY_ALLOW_CIDRS" in refused.stderr
    env["HV_DELIVERY_ALLOW_CIDRS"] = "10.20.0.0/16,fd12:3456::/48"
    with caplog.at_level(logging.INFO):
        done = runner.invoke(app, argv, env=env)
    assert done.exit_code == 0, done.stderr
    (audit,) = [r for r in caplog.records if r.name == "alerts.delivery.audit"]
    assert audit.levelno == logging.WARNING
    assert "registration: host 10.20.1.5" in audit.getMessage()
    assert "allowed by HV_DELIVERY_ALLOW_CIDRS 10.20.0.0/16" in audit.getMessage()
    assert "tok3n" not in caplog.text
    endpoint_id = json.loads(done.stdout)["endpoint_id"]
    (entry,) = _private_target_entries(db)
    assert (entry.actor_id, entry.entity_id) == ("webhook-registration", endpoint_id)
    assert json.loads(entry.detail) == {
        "host": "10.20.1.5", "address": "10.20.1.5", "network": "10.20.0.0/16",
        "step": "registration",
    }  # fmt: skip


def test_send_time_refuses_each_vector_before_any_request(db: sa.Engine, clock: FakeClock) -> None:
    # URLs registered before the rules tightened, and a name that now resolves to a vector.
    answers: dict[str, list[IPAddress]] = {"hooks.example.org": [ipaddress.ip_address("192.0.0.8")]}
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoints = {_legacy_endpoint(conn, team, url, clock): why for url, why in VECTORS.items()}
        named = _legacy_endpoint(conn, team, "https://hooks.example.org/hook", clock)
        endpoints[named] = "resolves to a IETF protocol assignments address 192.0.0.8"
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    tripwire = Tripwire()
    worker = _worker(db, clock, SsrfPolicy(), tripwire, resolver=lambda h, p: answers[h])
    try:
        assert worker.run_once() == len(endpoints)
    finally:
        worker.close()
    assert tripwire.requests == []
    with db.connect() as conn:
        rows = list(conn.execute(sa.select(webhook_attempts)))
    assert {r.endpoint_id for r in rows} == set(endpoints)
    for row in rows:
        assert row.outcome == "refused"
        assert endpoints[row.endpoint_id] in row.error


def test_send_inside_the_allow_list_is_pinned_and_audited(
    db: sa.Engine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    answers = {"ehr.hospital.internal": [ipaddress.ip_address("10.20.1.5")]}
    policy = SsrfPolicy(allow_networks=parse_allow_networks(["10.20.0.0/16"]))
    url = "https://ehr.hospital.internal/hooks/tok3n"
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoint = endpoints.register_endpoint(
            conn,
            team.team_id,
            url,
            ["alert.opened"],
            at=clock(),
            policy=policy,
            box=b.BOX,
            resolver=lambda h, p: answers[h],
        ).endpoint_id
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    caplog.clear()
    tripwire = Tripwire()
    worker = _worker(db, clock, policy, tripwire, resolver=lambda h, p: answers[h])
    try:
        with caplog.at_level(logging.INFO):
            worker.run_once()
            answers["ehr.hospital.internal"] = [ipaddress.ip_address("10.21.0.1")]  # not listed
            clock.advance(timedelta(minutes=1).total_seconds())
            worker.run_once()
    finally:
        worker.close()
    (request,) = tripwire.requests  # the first send reached the client, the second did not
    assert request.url.host == "10.20.1.5" and request.url.path == "/hooks/tok3n"
    assert request.headers["host"] == "ehr.hospital.internal"
    (audit,) = [r for r in caplog.records if r.name == "alerts.delivery.audit"]
    assert audit.getMessage() == (
        f"endpoint {endpoint} delivery: host ehr.hospital.internal at private address 10.20.1.5 "
        "allowed by HV_DELIVERY_ALLOW_CIDRS 10.20.0.0/16"
    )
    with db.connect() as conn:
        outcomes = [r.outcome for r in conn.execute(sa.select(webhook_attempts).order_by("id"))]
    assert outcomes == ["network", "refused"]
    assert "tok3n" not in caplog.text
    # In the audit trail: the registration and the one send it admitted (not the refusal).
    steps = [(e.entity_id, json.loads(e.detail)["step"]) for e in _private_target_entries(db)]
    assert steps == [(endpoint, "registration"), (endpoint, "delivery")]
    assert all("tok3n" not in e.detail for e in _private_target_entries(db))
    with db.connect() as conn:
        assert audit_store.verify(conn).ok


def _private_target_entries(db: sa.Engine) -> list[AuditEntry]:
    with db.connect() as conn:
        return [e for e in audit_store.entries(conn) if e.action == "webhook.private_target"]


def test_settings_refuse_a_bad_allow_list() -> None:
    base = {
        "database_url": "postgresql://u@h/db",
        "api_base_url": "https://api.example.org",
        "secrets_keys": b.SECRETS_KEYS,
    }
    for bad in ("0.0.0.0/0", "127.0.0.0/8", "8.8.8.0/24", "10.0.0.0/33"):
        with pytest.raises(ConfigError) as caught:
            load_settings(**base, allow_cidrs=bad)
        assert caught.value.field == "HV_DELIVERY_ALLOW_CIDRS"
    assert load_settings(**base).worker_config().policy.allow_networks == ()


def test_worker_log_names_endpoint_and_host_never_the_url(
    db: sa.Engine, pg_url: str, clock: FakeClock, receiver: ScriptedReceiver
) -> None:
    # Finding 4: httpx logs each request's full URL at INFO; the worker must not pass it on.
    path = "/hooks/t0ken-in-the-path"
    receiver.plan(path, "status:500", "ok")
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoint = b.add_endpoint(conn, team, receiver.url(path), clock())
        enqueue_events(conn, [b.opened("a1", "p1", clock())])
    worker = subprocess.Popen(
        [sys.executable, "-m", "alerts.delivery"],
        env=worker_env(pg_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = 200
        while len(receiver.received) < 2 and deadline:  # a failure, then the retry succeeds
            time.sleep(0.1)
            deadline -= 1
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=30)
    text = out.decode()
    assert len(receiver.received) == 2, text
    assert f"endpoint {endpoint.endpoint_id} host 127.0.0.1 delivery" in text
    assert "http_status (HTTP 500)" in text
    assert "t0ken" not in text
    assert receiver.url(path) not in text
