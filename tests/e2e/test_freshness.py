"""Data freshness on the real path: a hub's heartbeat and last will through Mosquitto and real
ingest into the record store, and the checker turning silence into technical findings."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.engine import store as engine_store
from alerts.engine import tables
from alerts.engine.runner import Runner
from alerts.events import EventType
from alerts.freshness.core import DEVICE_SILENT, HUB_OFFLINE, PIPELINE_BEHIND, FreshnessParams
from alerts.freshness.runner import step
from gateway.delivery import heartbeat_loop
from gateway.publisher import MqttConfig, Publisher
from gateway.registry import PairedDevice
from ingest import schema
from ingest.store import make_engine
from tests.gateway.factories import meter
from tests.ingest.support import IngestProcess, end_session, ingest_env
from tests.support.fault_proxy import FaultProxy, Mode
from tests.support.servers import MosquittoServer

PARAMS = FreshnessParams(hub_offline_grace_s=0, heartbeat_timeout_s=3600, pipeline_max_lag_s=60)


def _now() -> datetime:
    return datetime.now(UTC)


async def _until(predicate: object, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls the database
            await asyncio.sleep(0.1)


def _hub(engine: sa.Engine, gateway_id: str) -> sa.Row[tuple[bool, datetime]] | None:
    h = schema.hub_status.c
    with engine.connect() as conn:
        return conn.execute(
            sa.select(h.online, h.heartbeat_at).where(h.gateway_id == gateway_id)
        ).first()


def _events(engine: sa.Engine) -> list[tuple[str, str | None]]:
    e = tables.alert_events.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(e.type, e.rule_id).order_by(e.occurred_at, e.type)).all()
    return [(str(t), r) for t, r in rows]


async def test_a_hub_dropping_off_is_a_finding_and_its_return_resolves_it(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    gateway_id = f"gw-{tag}"
    url = f"sqlite:///{tmp_path / 'hv.db'}"
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(url, mosquitto.port, f"g{tag}", f"ingest-{tag}")
    )
    ingest.start()
    engine_store.migrate(url)
    engine = make_engine(url)
    dev = meter(f"MTR-{tag}")
    paired = [
        PairedDevice(dev, "F1:00:00:00:00:01", "glucose", f"p-{tag}", _now() - timedelta(days=9),
                     last_sync_at=_now() - timedelta(days=2)),
    ]  # fmt: skip
    proxy = FaultProxy(mosquitto.port).start()
    publisher = Publisher(gateway_id, MqttConfig("127.0.0.1", proxy.port, keepalive_s=5))
    try:
        async with publisher:
            await publisher.wait_connected(10)
            beats = asyncio.create_task(heartbeat_loop(publisher, lambda: paired, _now, 60))
            try:
                await _until(lambda: _hub(engine, gateway_id) is not None)
                # Up, and the meter unreached for two days: that device is silent (low).
                events = step(engine, _now(), PARAMS)
                assert [(e.type, e.rule_id) for e in events] == [
                    (EventType.ALERT_OPENED, DEVICE_SILENT)
                ]
                proxy.set_mode(Mode.DROP)  # the hub vanishes: the broker sends its last will
                await _until(lambda: not _hub(engine, gateway_id).online)  # type: ignore[union-attr]
                events = step(engine, _now(), PARAMS)
                assert sorted((e.type.value, e.rule_id) for e in events) == [
                    ("alert.opened", HUB_OFFLINE),
                    ("alert.resolved", DEVICE_SILENT),  # under an offline hub: the hub's finding
                    ("gateway.offline", HUB_OFFLINE),
                ]
                assert step(engine, _now(), PARAMS) == []  # nothing new while it stays away
                proxy.set_mode(Mode.PASS)  # back: status online and a heartbeat
                await _until(lambda: _hub(engine, gateway_id).online, 60)  # type: ignore[union-attr]
                events = step(engine, _now(), PARAMS)
                assert sorted((e.type.value, e.rule_id) for e in events) == [
                    ("alert.opened", DEVICE_SILENT),
                    ("alert.resolved", HUB_OFFLINE),
                ]
            finally:
                beats.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await beats
        a = tables.alerts.c
        with engine.connect() as conn:
            priorities = dict(conn.execute(sa.select(a.rule_id, a.priority)).all())
        assert priorities == {HUB_OFFLINE: "medium", DEVICE_SILENT: "low"}
    finally:
        engine.dispose()
        proxy.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")


def test_readings_waiting_for_a_stopped_engine_are_a_high_finding(tmp_path: Path) -> None:
    from ingest.store import migrate, write_batch
    from tests.ingest.support import make_reading

    url = f"sqlite:///{tmp_path / 'hv.db'}"
    migrate(url)
    engine_store.migrate(url)
    engine = make_engine(url)
    try:
        stored_at = _now()
        write_batch(engine, [make_reading("gw-1", "p-1", "SN1", i) for i in range(4)], [],
                    now=stored_at)  # fmt: skip
        assert step(engine, stored_at + timedelta(seconds=30), PARAMS) == []  # within the lag
        [event] = step(engine, stored_at + timedelta(seconds=61), PARAMS)
        assert (event.type, event.rule_id) == (EventType.ALERT_OPENED, PIPELINE_BEHIND)
        assert event.priority is not None and event.priority.value == "high"
        Runner(engine).step(stored_at + timedelta(seconds=62))  # the engine catches up
        [resolved] = step(engine, stored_at + timedelta(seconds=63), PARAMS)
        assert (resolved.type, resolved.rule_id) == (EventType.ALERT_RESOLVED, PIPELINE_BEHIND)
    finally:
        engine.dispose()
