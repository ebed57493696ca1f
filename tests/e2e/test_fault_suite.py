"""The end-to-end fault suite: every reading and every alert followed through the real chain
(`tests.e2e.chain`) while we break it, and checked by the ledger (`tests.e2e.ledger`).

Short scenarios run in `make test`; the long ones carry the `slow` marker and run in
`make soak`. Each scenario reports its recovery time (the terminal summary lists them).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from careteam.secrets import new_key_entry
from devices.wire import status_topic
from firmware_sims.air import VirtualAir
from tests.e2e.chain import Chain, until
from tests.e2e.receiver import RecordingReceiver, serve
from tests.support.fault_proxy import Mode
from tests.support.servers import PostgresServer, VictoriaMetricsServer

EXPECTED = {"glucose.hypo_l2": 1}
RECOVERY: list[tuple[str, float]] = []  # (what, seconds), printed by tests/e2e/conftest.py


def recovered(what: str, seconds: float) -> None:
    RECOVERY.append((what, seconds))


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


@pytest.fixture
async def chain(
    air: VirtualAir,
    pg_url: str,
    postgres: PostgresServer,
    victoria_metrics: VictoriaMetricsServer,
    tmp_path: Path,
) -> AsyncIterator[Chain]:
    async with serve(RecordingReceiver(pg_url, new_key_entry())) as receiver:
        the_chain = Chain(tmp_path, pg_url, postgres, victoria_metrics, air, receiver)
        try:
            yield the_chain
        finally:
            await the_chain.close()


def _stored(chain: Chain) -> int:
    return len(chain.stored())


async def _finish(chain: Chain, what: str, timeout_s: float = 120) -> None:
    took = await until(chain.complete, timeout_s, f"{what}: the chain to drain")
    recovered(what, took)
    report = chain.ledger(EXPECTED)
    assert report.ok, f"{what}: {report}"


async def test_sigkills_of_ingest_broker_and_hub_mid_stream_lose_and_double_nothing(
    chain: Chain,
) -> None:
    await chain.start(records=200)
    chain.db_link.set_mode(Mode.PASS, delay_s=0.05)  # commits take a while: faults land mid-way
    chain.proc("hub").start()
    await until(lambda: _stored(chain) >= 10, 120, "the first readings")
    chain.proc("ingest").kill()
    await asyncio.sleep(1.0)  # the hub goes on publishing into ingest's queue at the broker
    at_kill = _stored(chain)
    chain.broker.kill()  # ...which dies with it: those messages exist only in the hub's outbox
    chain.broker.start()  # same port; sessions since the last autosave are gone
    chain.proc("ingest").start()
    t0 = time.monotonic()
    # (on a fast run everything may have been stored before the kill: then nothing is left)
    total = len(chain.produced())
    await until(lambda: _stored(chain) > at_kill or at_kill == total, 60, "storing again")
    recovered("ingest + broker SIGKILL: storing again", time.monotonic() - t0)
    recovered("ingest + broker SIGKILL at stored readings", at_kill)
    chain.proc("hub").kill()  # whatever it had not had receipted stays in its outbox
    now = datetime.now(UTC)
    for minutes in range(3):  # the patient measures while the hub is down
        chain.meter.take_reading(120 + minutes, at_utc=now - timedelta(minutes=5 - minutes))
    await asyncio.sleep(1.0)  # the HCI bridge notices the old host leaving
    chain.proc("hub").start()
    chain.db_link.set_mode(Mode.PASS, delay_s=0.0)
    await _finish(chain, "ingest + broker + hub SIGKILL")
    assert (chain.proc("ingest").kills, chain.proc("hub").kills) == (1, 1)


async def test_the_ledger_catches_an_unsafe_build_that_acknowledges_before_commit(
    chain: Chain,
) -> None:
    # Ingest acknowledges (to the broker and with the end-to-end receipt) before it commits,
    # then dies before the commit: the hub retires readings nobody stored. The ledger must say.
    # Each reading is published once until ingest comes back: a resend after the suite's usual
    # 2 s (a loaded machine takes longer to receipt) puts a second copy of the doomed batch in
    # ingest's queue, which the restarted ingest stores, and nothing is lost to find.
    chain.resend_first_s = 300.0
    await chain.start(
        records=60,
        ingest_extra={
            "unsafe_ack_before_commit": "true",
            "failpoint": "before_commit",
            "failpoint_batch": "2",
        },
    )
    chain.proc("hub").start()
    ingest = chain.proc("ingest")
    await until(lambda: not ingest.alive(), 60, "the unsafe ingest to die at its failpoint")
    assert "failpoint before_commit: SIGKILL" in ingest.log()
    ingest.env.pop("HV_INGEST_FAILPOINT")
    ingest.start()
    await until(lambda: chain.complete() or _lost_settled(chain), 90, "the hub to drain")
    report = chain.ledger(EXPECTED, mirror=False)
    lost = report.stage("record store").lost
    assert not report.ok and lost, str(report)
    assert set(lost) <= set(chain.produced())


def _lost_settled(chain: Chain) -> bool:
    """The hub has nothing pending (whatever it retired) and ingest is idle."""
    from gateway.outbox import Outbox

    path = chain.workdir / "hub" / "gateway.sqlite"
    if not path.exists():
        return False
    box = Outbox(path)
    try:
        pending = box.stats(datetime.now(UTC)).pending
        held = len(box.reading_ids())
    finally:
        box.close()
    return pending == 0 and held == len(chain.produced())


def _watch_status(port: int, topic: str) -> tuple[mqtt.Client, list[tuple[float, bytes]]]:
    seen: list[tuple[float, bytes]] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    client.on_message = lambda _c, _u, m: seen.append((time.monotonic(), bytes(m.payload)))
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    assert subscribed.wait(10)
    return client, seen


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_half_open_hub_link_is_detected_without_a_reconnect_storm(chain: Chain) -> None:
    await chain.start(records=20)
    chain.proc("hub").start()
    await _finish(chain, "baseline before the half-open link")
    watcher, seen = _watch_status(chain.broker.port, status_topic(chain.gateway_id))
    try:
        connections = chain.hub_link.connections
        t0 = time.monotonic()
        chain.hub_link.set_mode(Mode.HALF_OPEN)  # the hub's far end vanishes, nothing is closed
        # The broker hears nothing from the hub: after 1.5 x keepalive it drops the session and
        # publishes the hub's last will (MQTT 5 section 3.1.2.10).
        await until(lambda: any(p == b"offline" for _, p in seen), 30, "the last will")
        detected_s = next(t for t, p in seen if p == b"offline") - t0
        recovered("half-open hub link: broker publishes the last will", detected_s)
        # 1 s is Mosquitto's keepalive check granularity, 1 s more for a loaded machine.
        assert detected_s <= 1.5 * chain.keepalive_s + 2.0, detected_s
        # The hub's own PINGREQ goes unanswered: it reconnects, once.
        await until(lambda: chain.hub_link.connections > connections, 30, "the hub to reconnect")
        recovered("half-open hub link: hub reconnected", time.monotonic() - t0)
        await asyncio.sleep(3 * chain.keepalive_s)
        assert chain.hub_link.connections - connections == 1, "a reconnect storm"
        assert seen[-1][1] == b"online"
        chain.meter.take_reading(150, at_utc=datetime.now(UTC) - timedelta(minutes=1))
        await _finish(chain, "half-open hub link: new reading through")
    finally:
        watcher.disconnect()
        watcher.loop_stop()


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_sixty_second_partition_between_hub_and_broker_loses_nothing(
    chain: Chain,
) -> None:
    await chain.start(records=200)
    chain.db_link.set_mode(Mode.PASS, delay_s=0.02)
    chain.proc("hub").start()
    await until(lambda: _stored(chain) >= 10, 120, "the first readings")
    chain.hub_link.set_mode(Mode.BLACKHOLE)
    now = datetime.now(UTC)
    for minutes in range(5):  # the patient measures during the partition
        chain.meter.take_reading(100 + minutes, at_utc=now - timedelta(minutes=10 - minutes))
    await asyncio.sleep(60)
    chain.hub_link.set_mode(Mode.PASS)
    chain.db_link.set_mode(Mode.PASS, delay_s=0.0)
    await _finish(chain, "60 s hub-broker partition", timeout_s=180)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_sigkills_of_engine_and_delivery_worker_lose_and_double_no_alert(
    chain: Chain,
) -> None:
    await chain.start(records=80)
    chain.proc("engine").kill()  # the engine is down while the readings arrive
    chain.proc("hub").start()
    await until(lambda: _stored(chain) >= 81, 120, "every reading stored")
    chain.proc("engine").start()
    await until(lambda: bool(chain.raised()), 60, "the hypo alert")
    chain.proc("delivery").kill()
    chain.proc("engine").kill()
    chain.proc("engine").start()
    t0 = time.monotonic()
    chain.proc("delivery").start()
    await until(lambda: bool(chain.delivered()), 60, "the delivery")
    recovered("engine + delivery SIGKILL: alert delivered", time.monotonic() - t0)
    await _finish(chain, "engine + delivery SIGKILL")
    assert len(chain.raised()) == 1


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_slow_database_backs_pressure_up_without_loss_and_with_bounded_memory(
    chain: Chain,
) -> None:
    await chain.start(records=400)
    chain.db_link.set_mode(Mode.PASS, delay_s=0.2)  # every round trip to PostgreSQL is slow
    chain.proc("hub").start()
    ingest = chain.proc("ingest")
    assert ingest.proc is not None
    rss: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rss.append(_rss_kib(ingest.proc.pid))
        await asyncio.sleep(1)
    chain.db_link.set_mode(Mode.PASS, delay_s=0.0)
    await _finish(chain, "slow database (200 ms per round trip)", timeout_s=240)
    recovered("slow database: ingest peak RSS MiB", max(rss) / 1024)
    assert max(rss) < 400 * 1024, f"ingest RSS peaked at {max(rss)} KiB"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
