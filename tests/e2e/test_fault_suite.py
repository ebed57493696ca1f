"""The end-to-end fault suite: every reading and every alert followed through the real chain
(`tests.e2e.chain`) while we break it, and checked by the ledger (`tests.e2e.ledger`).

Short scenarios run in `make test`; the long ones carry the `slow` marker and run in
`make soak`. Each scenario reports its recovery time (the terminal summary lists them).
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from alerts.freshness.core import CLOCK_SKEW, STORAGE_FULL
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


async def _finish(
    chain: Chain, what: str, timeout_s: float = 120, expected: dict[str, int] = EXPECTED
) -> None:
    took = await until(chain.complete, timeout_s, f"{what}: the chain to drain")
    recovered(what, took)
    report = chain.ledger(expected)
    assert report.ok, f"{what}: {report}"


async def test_sigkills_of_ingest_broker_and_hub_mid_stream_lose_and_double_nothing(
    chain: Chain,
) -> None:
    # Small batches (two messages, about eight readings) whose commits take a while, so the
    # faults land mid-way: in one batch of everything, all was stored before the first kill.
    await chain.start(records=200, ingest_extra={"batch_max_messages": "2"})
    chain.db_link.set_mode(Mode.PASS, delay_s=0.05)
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
            "failpoint_batch": "1",  # the hub's backlog may well come in one batch
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


# Mosquitto 2.0 checks keepalives only every 5 s or so (src/keepalive.c: `last_keepalive_check
# + 5 < now`): a client silent past 1.5 x keepalive is dropped up to that much later. The hub
# pings after a third of its keepalive (gateway.publisher.PINGS_PER_KEEPALIVE; paho alone
# pinged after one idle keepalive and gave up one later: up to 2 x) and so notices within 1.5 x.
MOSQUITTO_CHECK_S = 6.0


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_a_half_open_hub_link_is_detected_without_a_reconnect_storm(chain: Chain) -> None:
    k = chain.keepalive_s
    await chain.start(records=20)
    chain.proc("hub").start()
    await _finish(chain, "baseline before the half-open link")
    watcher, seen = _watch_status(chain.broker.port, status_topic(chain.gateway_id))
    try:
        # 1. Half-open: the hub's connection goes silent both ways, nothing is closed; a new
        # connection would work. The hub's unanswered PINGREQ tells it: it reconnects, once,
        # taking its session over (Mosquitto then drops the old connection's will unsent).
        connections = chain.hub_link.connections
        t0 = time.monotonic()
        chain.hub_link.set_mode(Mode.HALF_OPEN)
        took = await until(lambda: chain.hub_link.connections > connections, 30, "a reconnect")
        recovered("half-open hub link: hub detected it and reconnected (s)", took)
        assert took <= 1.5 * k, f"the hub took {took:.1f} s (keepalive {k} s)"
        await asyncio.sleep(3 * k)
        assert chain.hub_link.connections - connections == 1, "a reconnect storm"
        assert seen[-1][1] == b"online"
        # 2. The far end vanishes for good (new connections are swallowed too): the broker
        # hears nothing, drops the session and publishes the hub's last will; meanwhile the
        # hub retries at its jittered, growing backoff, not in a storm.
        connections = chain.hub_link.connections
        t0 = time.monotonic()
        chain.hub_link.set_mode(Mode.BLACKHOLE)
        await until(lambda: seen[-1][1] == b"offline", 30, "the last will")
        will_s = next(t for t, p in seen if t >= t0 and p == b"offline") - t0
        recovered("blackholed hub link: broker published the last will (s)", will_s)
        assert will_s <= 1.5 * k + MOSQUITTO_CHECK_S + 1.0, will_s
        outage_s = 30.0
        await asyncio.sleep(outage_s - (time.monotonic() - t0))
        attempts = chain.hub_link.connections - connections
        recovered(f"blackholed hub link: hub connection attempts in {outage_s:.0f} s", attempts)
        assert 1 <= attempts <= outage_s / k + 1, f"{attempts} attempts: a reconnect storm"
        # 3. The link heals: the hub comes back on its next attempt and a new reading flows.
        t0 = time.monotonic()
        chain.hub_link.set_mode(Mode.PASS)
        await until(lambda: seen[-1][1] == b"online", 60, "the hub online again")
        recovered("blackholed hub link healed: hub online again (s)", time.monotonic() - t0)
        chain.meter.take_reading(150, at_utc=datetime.now(UTC) - timedelta(minutes=1))
        await _finish(chain, "half-open and blackholed hub link: new reading through")
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
    # Small broker queues: Mosquitto drops (silently, with a PUBACK) what it cannot queue for
    # ingest; only the hub's outbox and its resends keep those readings.
    await chain.start(records=600, broker_config="max_queued_messages 5\n")
    chain.db_link.set_mode(Mode.PASS, delay_s=0.3)  # every chunk to and from PostgreSQL waits
    watcher, dropped = _watch_status(chain.broker.port, "$SYS/broker/publish/messages/dropped")
    chain.proc("hub").start()
    ingest = chain.proc("ingest")
    assert ingest.proc is not None
    rss: list[int] = []
    backlog: list[int] = []
    t0 = time.monotonic()
    # The database stays slow until everything is stored, mirrored and alerted: the backlog
    # drains through the slow link, so its drain time is the figure.
    while not chain.complete():
        rss.append(_rss_kib(ingest.proc.pid))
        backlog.append(chain.hub_pending() if (chain.hub_dir / "gateway.sqlite").exists() else 0)
        assert time.monotonic() - t0 < 300, f"the backlog did not drain (now {backlog[-1]})"
        await asyncio.sleep(1)
    drained_s = time.monotonic() - t0
    chain.db_link.set_mode(Mode.PASS, delay_s=0.0)
    watcher.disconnect()
    watcher.loop_stop()
    recovered("slow database (300 ms per chunk): everything stored and mirrored (s)", drained_s)
    recovered("slow database: hub backlog peak (readings)", max(backlog))
    recovered("slow database: ingest peak RSS (MiB)", max(rss) / 1024)
    # $SYS is published every 10 s: the last figure seen, at least what was dropped.
    recovered("slow database: messages the broker dropped", max([0, *(int(p) for _, p in dropped)]))
    assert max(backlog) > 50, f"no backpressure: the hub's backlog peaked at {max(backlog)}"
    report = chain.ledger(EXPECTED)
    assert report.ok, str(report)
    assert max(rss) < 400 * 1024, f"ingest RSS peaked at {max(rss)} KiB"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ------------------------------------------------------------------------- hub disk and clock


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real filesystem with little room for the hub's data (tmpfs, 8 MiB; needs root)."""
    mount = tmp_path / "hub-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here (root needed): {done.stderr.strip()}")
    try:
        _assert_small(mount)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


SMALL_DISK_MAX_BYTES = 64 << 20


def _assert_small(mount: Path) -> None:
    """The small filesystem is really what `mount` names (not the machine's own disk, e.g.
    after something unmounted it): filling anything else would fill the machine."""
    st = os.statvfs(mount)
    size = st.f_blocks * st.f_frsize
    assert os.path.ismount(mount) and size <= SMALL_DISK_MAX_BYTES, (
        f"{mount} is not the small filesystem (mounted: {os.path.ismount(mount)}, {size} bytes)"
    )


def _fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem has no byte left (ENOSPC); never more than
    the small filesystem can hold."""
    _assert_small(directory)
    ballast = directory / "ballast"
    written = 0
    with ballast.open("wb", buffering=0) as f:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            chunk = b"\0" * size
            try:
                while n := f.write(chunk):
                    written += n
                    if written > SMALL_DISK_MAX_BYTES:
                        ballast.unlink()
                        pytest.fail(f"{directory} took {written} bytes: not the small filesystem")
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    return ballast


async def test_a_full_hub_disk_keeps_records_on_the_meter_alarms_and_loses_nothing(
    chain: Chain, small_disk: Path
) -> None:
    expected = {**EXPECTED, STORAGE_FULL: 1}
    await chain.start(records=20, hub_data_dir=small_disk / "hub")
    chain.proc("freshness").start()
    chain.proc("hub").start()
    await _finish(chain, "baseline before the disk fills")
    ballast = _fill(small_disk)
    t0 = time.monotonic()
    now = datetime.now(UTC)
    before = set(chain.hub_ids())
    for minutes in range(30):  # the patient measures while the hub has no room
        chain.meter.take_reading(100 + minutes, at_utc=now - timedelta(minutes=40 - minutes))
    new = set(chain.produced()) - before
    hub = chain.proc("hub")
    await until(lambda: chain.received("alert.opened", STORAGE_FULL), 60, "the disk-full alarm")
    recovered("hub disk full: alarm delivered to the care team (s)", time.monotonic() - t0)
    assert hub.alive(), hub.log()[-3000:]
    assert "outbox full" in hub.log()
    # Nothing of the new records reached the hub's disk: the meter keeps them.
    assert not new & set(chain.hub_ids())
    assert {i for i, _ in chain.stored()} & new == set()
    await asyncio.sleep(3)  # a few more rounds of a full disk
    assert hub.alive(), hub.log()[-3000:]
    ballast.unlink()  # space returns
    t0 = time.monotonic()
    await _finish(chain, "hub disk full: space returned, everything stored", expected=expected)
    await until(lambda: chain.findings(STORAGE_FULL)[-1][0] == "resolved", 30, "the all-clear")
    recovered("hub disk full: finding resolved after space returned (s)", time.monotonic() - t0)
    assert hub.kills == 0 and hub.alive()


LIBFAKETIME = next(iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))), None)


@pytest.mark.skipif(LIBFAKETIME is None, reason="no libfaketime: scripts/install-system-deps.sh")
async def test_a_hub_clock_jump_keeps_ids_and_raw_times_and_the_skew_is_flagged(
    chain: Chain,
) -> None:
    # The hub's wall clock is faked by libfaketime (LD_PRELOAD: the process's own clock_gettime
    # reads the offset in a file at each call); its monotonic clock is left alone, as a real
    # clock step leaves it. (libfaketime 0.9.10 then fails time.sleep with EINVAL: nothing in
    # the hub's path sleeps that way while it stays connected.)
    expected = {**EXPECTED, CLOCK_SKEW: 1}
    await chain.start(records=20)
    chain.proc("freshness").start()
    clock = chain.workdir / "hub-clock-offset"
    clock.write_text("+0\n")
    chain.proc("hub").start(
        LD_PRELOAD=str(LIBFAKETIME), FAKETIME_TIMESTAMP_FILE=str(clock), FAKETIME_NO_CACHE="1",
        FAKETIME_DONT_FAKE_MONOTONIC="1",
    )  # fmt: skip
    await _finish(chain, "baseline before the hub clock jumps")
    clock.write_text("+2h\n")  # the hub's clock jumps two hours ahead
    t0 = time.monotonic()
    now = datetime.now(UTC)
    before = set(chain.produced())
    for minutes in range(3):
        chain.meter.take_reading(110 + minutes, at_utc=now - timedelta(minutes=3 - minutes))
    ahead = set(chain.produced()) - before
    await until(lambda: ahead <= {i for i, _ in chain.stored()}, 60, "readings under the jump")
    await until(lambda: chain.received("alert.opened", CLOCK_SKEW), 60, "the skew finding")
    recovered("hub clock +2 h: skew flagged to the care team (s)", time.monotonic() - t0)
    offset_s = float(chain.findings(CLOCK_SKEW)[-1][1]["clock_offset_s"])  # type: ignore[arg-type]
    assert abs(offset_s - 7200) < 60, offset_s
    # The hub's times were really off (its receive times), the device's raw times were not.
    assert all(abs(skew - 7200) < 120 for skew in _receive_skews_s(chain, ahead)), "no jump"
    clock.write_text("+0\n")  # the clock is stepped back (NTP): two hours backwards
    t0 = time.monotonic()
    now = datetime.now(UTC)
    before = set(chain.produced())
    for minutes in range(2):
        chain.meter.take_reading(120 + minutes, at_utc=now - timedelta(minutes=2 - minutes))
    back = set(chain.produced()) - before
    await until(lambda: back <= {i for i, _ in chain.stored()}, 60, "readings after the step")
    recovered("hub clock stepped back 2 h: new readings stored (s)", time.monotonic() - t0)
    await until(lambda: chain.findings(CLOCK_SKEW)[-1][0] == "resolved", 60, "the all-clear")
    recovered("hub clock stepped back 2 h: skew finding resolved (s)", time.monotonic() - t0)
    await _finish(chain, "hub clock jumps: everything stored once", expected=expected)


def _receive_skews_s(chain: Chain, reading_ids: set[str]) -> list[float]:
    """Per reading: the hub's receive time minus the store's commit time (seconds)."""
    engine = sa.create_engine(chain.pg_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT reading_id, received_at, stored_at FROM readings"
                        " WHERE patient_id = :p"), {"p": chain.patient_id}).all()  # fmt: skip
    finally:
        engine.dispose()
    return [(r - s).total_seconds() for i, r, s in rows if str(i) in reading_ids]
