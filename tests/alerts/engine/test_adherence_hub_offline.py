"""Silence is never confused with a patient not measuring: while a patient's hub is offline (an
open `technical.hub_offline` finding of the freshness checker), `adherence.no_readings` does not
fire for them, nor while their hub says its storage is full (`technical.hub_storage_full`); once
the hub is back and still brings nothing, it does.

Real record store (SQLite, both migrations), hub facts written by ingest's own code, the real
freshness step and the real engine runner.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.runner import ADHERENCE_RULE, Runner
from alerts.freshness.core import HUB_OFFLINE, STORAGE_FULL, FreshnessParams
from alerts.freshness.runner import step as freshness_step
from devices.reading import Kind
from devices.wire import DeviceContact, Heartbeat
from ingest.hub_facts import HubUpdates, write_hub_updates
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.support import reading, store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PARAMS = FreshnessParams()  # the shipped thresholds: offline 600 s, heartbeat 30 min


def _hub_says(engine: sa.Engine, updates: HubUpdates, at: datetime) -> None:
    with engine.begin() as conn:
        write_hub_updates(conn, updates, at)


def _beat(gateway_id: str, patient_id: str, at: datetime) -> HubUpdates:
    contact = DeviceContact(f"meter-{patient_id}", patient_id, Kind.GLUCOSE.value,
                            NOW - timedelta(days=30), at)  # fmt: skip
    return HubUpdates(heartbeats={gateway_id: Heartbeat(gateway_id, at, (contact,))})


def _open(engine: sa.Engine, rule_id: str) -> set[str]:
    a = tables.alerts.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.patient_id).where(a.status == "open", a.rule_id == rule_id))
        return {str(p) for (p,) in rows}


def test_adherence_waits_while_the_hub_is_offline_and_fires_once_it_is_back(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'hv.db'}"
    ingest_migrate(url)
    alert_store.migrate(url)
    engine = make_engine(url)
    try:
        # Two patients who measured daily until four days ago (max_gap_d is 3 days).
        last = NOW - timedelta(days=4)
        for patient in ("p-home", "p-away", "p-full"):
            store(engine, [reading(patient, last - timedelta(days=d), d) for d in range(10)],
                  last)  # fmt: skip
        # p-home's hub is up and reaches the meter (which has nothing new); p-away's hub went
        # offline (its last will) four days ago and has not been heard since.
        _hub_says(engine, _beat("gw-away", "p-away", last), last)
        _hub_says(engine, HubUpdates(statuses={"gw-away": False}), last + timedelta(minutes=1))
        _hub_says(engine, _beat("gw-home", "p-home", NOW - timedelta(minutes=2)),
                  NOW - timedelta(minutes=2))  # fmt: skip

        # p-full's hub is up, reaches the meter, but its disk is full: the records stay on it.
        full = _beat("gw-full", "p-full", NOW - timedelta(minutes=1))
        beat = full.heartbeats["gw-full"]
        full = HubUpdates(
            heartbeats={
                "gw-full": Heartbeat(beat.gateway_id, beat.sent_at, beat.devices, storage_full=True)
            }
        )
        _hub_says(engine, full, NOW - timedelta(minutes=1))

        freshness_step(engine, NOW, PARAMS)
        assert _open(engine, HUB_OFFLINE) == {"p-away"}
        assert _open(engine, STORAGE_FULL) == {"p-full"}
        Runner(engine).step(NOW)
        assert _open(engine, ADHERENCE_RULE) == {"p-home"}  # not the patients behind the hubs

        # The hub returns (online, a heartbeat: it reached the meter, which had nothing new).
        back = NOW + timedelta(minutes=5)
        _hub_says(engine, HubUpdates(statuses={"gw-away": True}), back)
        _hub_says(engine, _beat("gw-away", "p-away", back), back)
        freshness_step(engine, back + timedelta(seconds=10), PARAMS)
        assert _open(engine, HUB_OFFLINE) == set()
        Runner(engine).step(back + timedelta(seconds=20))
        assert _open(engine, ADHERENCE_RULE) == {"p-home", "p-away"}  # now it is the patient
    finally:
        engine.dispose()
