"""Simulated meter (500 records) and cuff (50) -> gateway -> Mosquitto -> the real ingest ->
PostgreSQL: every reading stored exactly once under the right id, every one retired from the
outbox by ingest's receipt, and a second sync fetches nothing new."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from firmware_sims.air import VirtualAir
from gateway.delivery import publish_loop, receipt_loop
from gateway.publisher import MqttConfig, Publisher
from tests.gateway.sims import (
    PASSKEY,
    cuff_ids,
    hub,
    make_cuff,
    make_meter,
    meter_ids,
    sync_heard,
    utcnow,
)
from tests.ingest.support import IngestProcess, check_delivery, end_session, ingest_env
from tests.support.record import enrol
from tests.support.servers import MosquittoServer


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_meter_and_cuff_reach_the_record_store_exactly_once(
    air: VirtualAir, mosquitto: MosquittoServer, pg_url: str, tmp_path: Path
) -> None:
    client_id = f"ingest-gw-{uuid.uuid4().hex[:8]}"
    ingest = IngestProcess(
        tmp_path,
        "ingest",
        ingest_env(pg_url, mosquitto.port, f"g{uuid.uuid4().hex[:8]}", client_id),
    )
    await asyncio.to_thread(ingest.start)
    await asyncio.to_thread(enrol, pg_url, [("gw-test", "patient-1")])
    meter = make_meter(air, records=500)
    cuff = make_cuff(air, records=50)
    await meter.power_on()
    await cuff.power_on()
    tasks: list[asyncio.Task[None]] = []
    try:
        async with hub(air, tmp_path) as h:
            publisher = Publisher("gw-test", MqttConfig(mosquitto.host, mosquitto.port))
            async with publisher:
                await publisher.wait_connected(10)
                tasks = [
                    asyncio.create_task(
                        publish_loop(h.outbox, publisher, utcnow, h.gateway.wake, poll_s=0.1)
                    ),
                    asyncio.create_task(receipt_loop(h.outbox, publisher, utcnow)),
                ]
                await h.gateway.discover(0.4)
                assert (
                    await h.gateway.pair(meter.address, "patient-1", passkey=PASSKEY)
                ).stored == 500
                assert (await h.gateway.pair(cuff.address, "patient-1")).stored == 50
                async with asyncio.timeout(60):
                    while h.outbox.stats(utcnow()).pending:  # noqa: ASYNC110 - polls SQLite
                        await asyncio.sleep(0.1)
                again = await sync_heard(h.gateway, devices=2)
                assert sorted(r.stored for r in again.values()) == [0, 0]
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        expected = meter_ids(meter) | cuff_ids(cuff)
        engine = sa.create_engine(pg_url)
        report = check_delivery(engine, expected)
        with engine.connect() as conn:
            stored_total = conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one()
        engine.dispose()
        assert report.ok, (len(report.missing), report.duplicate_rows)
        assert stored_total == 550  # nothing else arrived
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.to_thread(ingest.stop)
        await asyncio.to_thread(end_session, mosquitto.port, client_id)
