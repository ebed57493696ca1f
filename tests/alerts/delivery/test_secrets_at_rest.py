"""A webhook signing secret never appears in the database in clear: a real `pg_dump` of the
record holds only sealed text, which opens with the configured key and does not open for
another endpoint; old databases with secrets in clear are sealed by the worker's start-up."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from alerts.delivery import endpoints
from careteam.errors import SecretsError
from careteam.secrets import SecretBox, new_key_entry
from careteam.tables import webhook_endpoint_secrets
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.support import servers


def _dump(postgres: servers.PostgresServer, pg_url: str) -> str:
    database = urlsplit(pg_url).path.lstrip("/")
    done = subprocess.run(
        [
            postgres._bin("pg_dump"),
            "-h", "127.0.0.1", "-p", str(postgres.port), "-U", "postgres",
            "--data-only", database,
        ],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout


def test_a_dump_holds_no_secret_in_clear(
    postgres: servers.PostgresServer, pg_url: str, db: sa.Engine, clock: FakeClock
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        first = b.add_endpoint(conn, team, "http://127.0.0.1:9/a", clock())
        rotated = endpoints.rotate_secret(conn, first.endpoint_id, clock(), box=b.BOX)
        other = b.add_endpoint(conn, team, "http://127.0.0.1:9/b", clock())
    dump = _dump(postgres, pg_url)
    assert "webhook_endpoint_secrets" in dump and "hvs1:test:" in dump
    for secret in (first.secret, rotated, other.secret):
        assert secret.startswith("whsec_")
        assert secret not in dump and secret.removeprefix("whsec_") not in dump
    with db.connect() as conn:
        opened = endpoints.active_secrets(
            conn, [first.endpoint_id, other.endpoint_id], clock(), box=b.BOX
        )
        sealed = conn.execute(
            sa.select(webhook_endpoint_secrets.c.secret).where(
                webhook_endpoint_secrets.c.endpoint_id == other.endpoint_id
            )
        ).scalar_one()
    assert opened == {first.endpoint_id: [rotated, first.secret], other.endpoint_id: [other.secret]}
    with pytest.raises(SecretsError):  # a sealed secret copied onto another endpoint's row
        b.BOX.open(sealed, first.endpoint_id)
    with pytest.raises(SecretsError):  # and without the key
        SecretBox.from_setting(new_key_entry("test")).open(sealed, other.endpoint_id)


def test_secrets_left_in_clear_by_an_old_version_are_sealed_at_worker_start(
    db: sa.Engine, clock: FakeClock
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        endpoint = b.add_endpoint(conn, team, "http://127.0.0.1:9/a", clock())
        s = webhook_endpoint_secrets.c
        conn.execute(  # what a database from before sealing holds
            sa.update(webhook_endpoint_secrets)
            .where(s.endpoint_id == endpoint.endpoint_id)
            .values(secret=endpoint.secret)
        )
    worker = b.worker(db, clock)
    try:
        assert worker.seal_secrets() == 1  # what run() does first
        assert worker.seal_secrets() == 0
    finally:
        worker.close()
    with db.connect() as conn:
        stored = conn.execute(sa.select(webhook_endpoint_secrets.c.secret)).scalar_one()
        opened = endpoints.active_secrets(conn, [endpoint.endpoint_id], clock(), box=b.BOX)
    assert stored.startswith("hvs1:") and endpoint.secret not in stored
    assert opened == {endpoint.endpoint_id: [endpoint.secret]}
