"""The `homevitals webhook` commands: registration through the CLI, and `webhook receive` as a
real process that verifies signatures, prints each event once and refuses forgeries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alerts.delivery import endpoints, signing
from alerts.delivery.cli import app
from alerts.delivery.migrations import migrate
from alerts.delivery.outbox import enqueue_events
from careteam.cli import consent_app, patient_app
from tests.alerts.delivery.builders import BOX, SECRETS_KEYS, opened
from tests.support.servers import free_port, wait_for_port

ROOT = Path(__file__).parents[3]


def test_a_care_team_admin_registers_an_endpoint(pg_url: str) -> None:
    runner = CliRunner(env={"HV_SECRETS_KEYS": SECRETS_KEYS})
    assert runner.invoke(app, ["migrate", "--db", pg_url]).exit_code == 0
    migrate(pg_url)  # idempotent
    inst = runner.invoke(app, ["institution-add", "City Hospital", "--db", pg_url]).stdout.strip()
    team = runner.invoke(app, ["team-add", inst, "Cardiology", "--db", pg_url]).stdout.strip()
    unknown = runner.invoke(app, ["assign", team, "p1", "--db", pg_url])
    assert unknown.exit_code == 2 and "patient_id: no record 'p1'" in unknown.stderr
    added = runner.invoke(
        patient_app,
        ["add", "p1", "--name", "Wang Li", "--timezone", "Asia/Shanghai", "--db", pg_url],
    )
    assert added.exit_code == 0, added.stderr
    assert runner.invoke(app, ["assign", team, "p1", "--db", pg_url]).exit_code == 0
    granted = runner.invoke(
        consent_app,
        ["grant", "p1", "--team", team, "--kind", "alerts", "--method", "paper", "--db", pg_url],
    )
    assert granted.exit_code == 0, granted.stderr
    refused = runner.invoke(
        app,
        ["register", team, "http://127.0.0.1:9/hook", "--event", "alert.opened", "--db", pg_url],
    )
    assert refused.exit_code == 2
    assert "url: plain http is not allowed outside development" in refused.stderr
    ok = runner.invoke(
        app,
        [
            "register",
            team,
            "http://127.0.0.1:9/hook",
            "--event",
            "alert.opened",
            "--event",
            "alert.escalated",
            "--allow-loopback",
            "--db",
            pg_url,
        ],
    )
    assert ok.exit_code == 0, ok.stderr
    created = json.loads(ok.stdout)
    assert created["secret"].startswith("whsec_")
    rotated = runner.invoke(app, ["rotate-secret", created["endpoint_id"], "--db", pg_url])
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        secrets = endpoints.active_secrets(
            conn, [created["endpoint_id"]], datetime.now(UTC), box=BOX
        )[created["endpoint_id"]]
    assert secrets == [rotated.stdout.strip(), created["secret"]]
    listed = runner.invoke(app, ["attempts", created["endpoint_id"], "--db", pg_url])
    assert listed.exit_code == 0 and listed.stdout == ""
    health = runner.invoke(app, ["health", team, "--db", pg_url])
    assert json.loads(health.stdout)["enabled"] is True
    member = runner.invoke(
        app, ["member-add", team, "Dr Li", "--role", "physician", "--db", pg_url]
    )
    with engine.begin() as conn:
        enqueue_events(conn, [opened("a1", "p1", datetime.now(UTC))])
    engine.dispose()
    acked = runner.invoke(app, ["acknowledge", "a1", member.stdout.strip(), "--db", pg_url])
    assert acked.stdout.strip() == "acknowledged"
    again = runner.invoke(app, ["acknowledge", "a1", member.stdout.strip(), "--db", pg_url])
    assert again.stdout.strip() == "already acknowledged"
    stranger = runner.invoke(app, ["acknowledge", "a1", "nobody", "--db", pg_url])
    assert stranger.exit_code == 2 and "member_id" in stranger.stderr


@pytest.mark.parametrize("secret_via", ["argv", "environment"])
def test_webhook_receive_verifies_and_prints(tmp_path: Path, secret_via: str) -> None:
    secret = signing.new_secret()
    port = free_port()
    out, err = tmp_path / "out", tmp_path / "err"
    argv = [sys.executable, "-m", "homevitals", "webhook", "receive", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if secret_via == "argv":
        argv += ["--secret", secret]
    else:
        env["HV_WEBHOOK_SECRETS"] = secret
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
    try:
        wait_for_port(port, proc, err)
        body = json.dumps({"type": "alert.opened", "data": {"event_id": "e1"}}).encode()
        headers = signing.sign_headers("e1", datetime.now(UTC), body, [secret])
        url = f"http://127.0.0.1:{port}/"
        with httpx.Client(timeout=5) as http:
            first = http.post(url, content=body, headers=headers)
            duplicate = http.post(url, content=body, headers=headers)
            tampered = http.post(url, content=body.replace(b"e1", b"e2"), headers=headers)
            unsigned = http.post(url, content=body)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert (first.status_code, duplicate.status_code) == (204, 204)
    assert tampered.status_code == 401 and unsigned.status_code == 401
    lines = out.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"webhook_id": "e1", "event": json.loads(body)}]
