"""SIGKILL the delivery worker (a real `python -m alerts.delivery` process) mid-send, restart it:
every event is delivered at least once, and a redelivery carries the same `webhook-id` and body.
Also: the worker refuses to start on bad configuration, naming the variable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook

from alerts.delivery.outbox import enqueue_events
from alerts.delivery.settings import ConfigError, Settings, load_settings
from alerts.delivery.tables import webhook_deliveries
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock
from tests.alerts.delivery.receiver import ScriptedReceiver
from tests.support.servers import free_port

ROOT = Path(__file__).parents[3]
EVENTS = 8
KILL_AFTER = 3


def worker_env(pg_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_DELIVERY_")}
    env.update(
        HV_DELIVERY_DATABASE_URL=pg_url,
        HV_DELIVERY_API_BASE_URL="https://api.example.org/v1",
        HV_DELIVERY_ALLOW_LOOPBACK_RECEIVERS="true",
        HV_DELIVERY_POLL_INTERVAL_S="0.1",
        HV_DELIVERY_TIMEOUT_S="0.5",
        HV_DELIVERY_LEASE_S="1",  # raised to 2 * timeout by the settings
        HV_SECRETS_KEYS=b.SECRETS_KEYS,
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def statuses(db: sa.Engine) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(webhook_deliveries.c.status)).scalars())


def test_sigkill_mid_send_then_restart_delivers_everything(
    db: sa.Engine, pg_url: str, clock: FakeClock, receiver: ScriptedReceiver, tmp_path: Path
) -> None:
    with db.begin() as conn:
        team = b.make_team(conn, clock(), "p1")
        secret = b.add_endpoint(conn, team, receiver.url(), clock()).secret
        events = [b.opened(f"a{i}", "p1", clock()) for i in range(EVENTS)]
        enqueue_events(conn, events)
    argv = [sys.executable, "-m", "alerts.delivery"]
    crashing = subprocess.run(
        argv,
        env=worker_env(pg_url, HV_DELIVERY_FAILPOINT=f"kill_after_response:{KILL_AFTER}"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert crashing.returncode == -signal.SIGKILL, crashing.stderr.decode()
    assert len(receiver.received) == KILL_AFTER
    # The third exchange happened but was never recorded: the row is still pending.
    assert statuses(db).count("delivered") == KILL_AFTER - 1

    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        restarted = subprocess.Popen(argv, env=worker_env(pg_url), stderr=sink)
    try:
        deadline = time.monotonic() + 30
        while set(statuses(db)) != {"delivered"}:
            assert time.monotonic() < deadline, statuses(db)
            assert restarted.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(15)
    assert restarted.returncode == 0

    by_id: dict[str, list[bytes]] = defaultdict(list)
    for got in receiver.received:
        Webhook(secret).verify(got.body, got.headers)
        by_id[got.headers["webhook-id"]].append(got.body)
    assert set(by_id) == {e.event_id for e in events}
    assert len(receiver.received) == EVENTS + 1  # exactly the unrecorded one came twice
    for bodies in by_id.values():
        assert len(set(bodies)) == 1


def test_the_shipped_defaults_keep_loopback_and_http_off() -> None:
    # The development flag for loopback receivers (docs/threat-model.md, webhooks).
    assert Settings.model_fields["allow_loopback_receivers"].default is False
    settings = load_settings(
        database_url="postgresql://db/hv",
        api_base_url="https://api/v1",
        secrets_keys=b.SECRETS_KEYS,
    )
    assert settings.worker_config().policy.allow_loopback is False
    with pytest.raises(ConfigError) as missing:  # no key: the worker cannot open its secrets
        load_settings(
            database_url="postgresql://db/hv", api_base_url="https://api/v1"
        ).worker_config()
    assert missing.value.field == "HV_SECRETS_KEYS"


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"api_base_url": "https://api/v1"}, "HV_DELIVERY_DATABASE_URL"),
        (
            {"database_url": "changeme", "api_base_url": "https://api/v1"},
            "HV_DELIVERY_DATABASE_URL",
        ),
        (
            {"database_url": "postgresql://db/hv", "api_base_url": "http://api/v1"},
            "HV_DELIVERY_API_BASE_URL",
        ),
        (
            {
                "database_url": "postgresql://db/hv",
                "api_base_url": "https://a",
                "ack_base_url": "https://b",
            },
            "HV_DELIVERY_ACK_KEY",
        ),
        (
            {
                "database_url": "postgresql://db/hv",
                "api_base_url": "https://a",
                "failpoint": "boom",
            },
            "HV_DELIVERY_FAILPOINT",
        ),
    ],
)
def test_bad_configuration_names_the_variable(overrides: dict[str, str], variable: str) -> None:
    for key in [k for k in os.environ if k.startswith("HV_DELIVERY_")]:
        pytest.fail(f"{key} set in the test environment")
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert caught.value.field == variable


def test_the_worker_loop_survives_a_database_outage(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none")
    worker = b.worker(nowhere, clock)
    stop = threading.Event()
    loop = threading.Thread(target=worker.run, args=(stop, 0.05))
    try:
        with caplog.at_level("ERROR", logger="alerts.delivery.worker"):
            loop.start()
            deadline = time.monotonic() + 20
            while not caplog.records:
                assert time.monotonic() < deadline and loop.is_alive()
                time.sleep(0.05)
            time.sleep(0.3)  # several more failing passes
            assert loop.is_alive()
    finally:
        stop.set()
        loop.join(20)
        worker.close()
        nowhere.dispose()
    assert not loop.is_alive()
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "record store unavailable, retrying"
    ]
