"""Shared set-up of the API tests: a migrated record store, the app under real uvicorn, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.engine.store import migrate as migrate_alerts
from api.app import create_app
from api.settings import Settings, load_settings
from api.tokens import Actor, issue
from careteam.migrations import migrate as migrate_record
from ingest.store import migrate as migrate_ingest
from tests.alerts.delivery.receiver import UvicornThread

SIGNING_KEY = "hv-test-signing-key-5f2c81d0a9b34e67"


def settings(**over: object) -> Settings:
    return load_settings(signing_key=SIGNING_KEY, **over)


def migrate_all(url: str) -> None:
    """Every package's tables, as a deployment has them."""
    migrate_record(url)
    migrate_ingest(url)
    migrate_alerts(url)
    migrate_delivery(url)


def token(actor: Actor, subject: str, scope: str, *, ttl_s: int = 3600) -> str:
    return issue(
        settings().token_key(),
        actor,
        subject,
        scope,
        now=datetime.now(UTC),
        ttl=timedelta(seconds=ttl_s),
    )


@contextmanager
def serve(engine: sa.Engine, **over: object) -> Iterator[str]:
    """The API under a real uvicorn on loopback; yields its base URL."""
    server = UvicornThread(create_app(settings(**over), engine))
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def homevitals(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the `homevitals` console script as a user would."""
    full_env = {**os.environ, "HV_API_SIGNING_KEY": SIGNING_KEY, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "homevitals", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
        check=False,
    )
