"""Fault injection on the real thing: SIGKILL of ingest and of the broker, a time-series outage,
two replicas on one shared subscription, and the test of the loss checker itself.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices import Reading
from ingest.mirror import cursor_position
from ingest.read_port import last_reading_id
from ingest.store import make_engine, migrate
from tests.ingest.support import (
    GatewaySim,
    IngestProcess,
    Outgoing,
    batch_payload,
    check_delivery,
    drain,
    end_session,
    expected_samples,
    ingest_env,
    make_reading,
    reading_count,
    vm_samples,
    wait_stable,
    wait_until,
)
from tests.support.record import enrol_readings
from tests.support.servers import MosquittoServer, VictoriaMetricsServer


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    migrate(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def _plan(
    engine: sa.Engine, gateway_id: str, tag: str, count: int, per_message: int
) -> tuple[list[Outgoing], list[Reading]]:
    """Readings of one enrolled hub and patient, cut into messages."""
    readings = [
        make_reading(gateway_id, f"p{tag}-{gateway_id}", f"SN{tag}{gateway_id}", i)
        for i in range(count)
    ]
    enrol_readings(engine, readings[:1])
    messages = [
        batch_payload(gateway_id, readings[i : i + per_message])
        for i in range(0, count, per_message)
    ]
    return messages, readings


def _counter(log: str, name: str) -> int:
    return sum(int(v) for v in re.findall(rf"{name}=(\d+)", log))


@pytest.mark.parametrize("point", ["mid_batch", "before_commit", "after_commit"])
def test_sigkill_of_ingest_loses_nothing_and_stores_nothing_twice(  # noqa: PLR0917
    mosquitto: MosquittoServer, engine: sa.Engine, pg_url: str, tmp_path: Path, tag: str, point: str
) -> None:
    # No resend from the gateway: the broker session and the ack-after-commit alone must save
    # every reading. 30 messages of 100 readings, batches of 10 messages (1,000 rows: two
    # insert chunks, so "mid_batch" dies with half a batch inserted and not committed).
    client_id = f"ingest-{tag}"
    env = ingest_env(
        pg_url,
        mosquitto.port,
        f"g{tag}",
        client_id,
        batch_max_messages="10",
        batch_max_wait_ms="1000",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    ingest.start(failpoint=point, failpoint_batch="2")
    gw = GatewaySim(mosquitto.port, f"gw-{tag}", resend=False)
    try:
        messages, readings = _plan(engine, gw.gateway_id, tag, 3000, 100)
        for message in messages:
            gw.publish(message, wait=False)
        assert ingest.wait_killed() == -9, ingest.log()
        assert f"failpoint {point}: SIGKILL" in ingest.log()
        stored_at_crash = reading_count(engine)
        assert stored_at_crash % 100 == 0 and 0 < stored_at_crash < 3000, stored_at_crash
        ingest.start()
        drain([gw], timeout_s=60)
        report = check_delivery(engine, {r.reading_id for r in readings})
        assert report.ok, f"missing {len(report.missing)}, duplicated {report.duplicate_rows}"
        assert reading_count(engine) == 3000
        second_run = ingest.last_run_log()
        assert _counter(second_run, "redelivered") >= 1, second_run
        if point == "after_commit":
            # The committed but unacknowledged batch came back and was deduplicated.
            assert _counter(second_run, "already_stored") >= 100, second_run
        else:
            # Nothing of the killed (uncommitted) batch was stored, so only readings committed
            # before the crash may come back as "already stored": those of earlier batches
            # whose PUBACKs were still queued in paho when the process died.
            assert _counter(second_run, "already_stored") <= stored_at_crash, second_run
    finally:
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, client_id)


def test_the_loss_checker_reports_readings_lost_by_acking_before_commit(
    mosquitto: MosquittoServer, engine: sa.Engine, pg_url: str, tmp_path: Path, tag: str
) -> None:
    client_id = f"ingest-{tag}"
    env = ingest_env(
        pg_url,
        mosquitto.port,
        f"g{tag}",
        client_id,
        batch_max_messages="10",
        batch_max_wait_ms="1000",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    ingest.start(unsafe_ack_before_commit="true", failpoint="before_commit", failpoint_batch="2")
    gw = GatewaySim(mosquitto.port, f"gw-{tag}", resend=False)
    try:
        messages, readings = _plan(engine, gw.gateway_id, tag, 3000, 100)
        for message in messages:
            gw.publish(message, wait=False)
        assert ingest.wait_killed() == -9, ingest.log()
        ingest.start()
        # Wait until the restarted ingest has taken everything the broker still had.
        wait_until(lambda: gw.outstanding() < len(messages), 60, "the restarted ingest")
        wait_stable(gw.outstanding, quiet_s=2.0, timeout_s=60)
        report = check_delivery(engine, {r.reading_id for r in readings})
        assert report.missing, "acking before the commit must lose the batch in flight"
        assert len(report.missing) % 100 == 0 and len(report.missing) <= 1000
        # The unsafe build receipts before the commit too: a hub would retire what was lost.
        assert report.missing <= gw.receipted
        assert report.duplicate_rows == 0
    finally:
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, client_id)


def test_broker_sigkill_mid_stream_with_gateway_resend_loses_nothing(
    engine: sa.Engine, pg_url: str, tmp_path: Path, tag: str
) -> None:
    broker = MosquittoServer(tmp_path / "broker")
    broker.start()
    ingest = IngestProcess(tmp_path, "ingest", ingest_env(pg_url, broker.port, "g", "ingest-1"))
    sims: list[GatewaySim] = []
    try:
        ingest.start()
        sims = [GatewaySim(broker.port, f"gw{i}-{tag}", resend_after_s=2.0) for i in range(2)]
        plans = {s.gateway_id: _plan(engine, s.gateway_id, tag, 3000, 50) for s in sims}

        def stream(sim: GatewaySim) -> None:
            for message in plans[sim.gateway_id][0]:
                sim.publish(message, wait=False)
                time.sleep(0.02)

        threads = [threading.Thread(target=stream, args=(s,)) for s in sims]
        for t in threads:
            t.start()
        wait_until(lambda: reading_count(engine) >= 1500, 30, "the stream to be under way")
        broker.kill()
        time.sleep(0.5)
        broker.start()
        for t in threads:
            t.join(30)
        drain(sims, timeout_s=90)
        expected = {r.reading_id for _, rs in plans.values() for r in rs}
        report = check_delivery(engine, expected)
        assert report.ok, f"missing {len(report.missing)}, duplicated {report.duplicate_rows}"
        assert reading_count(engine) == 6000
        assert "disconnected" in ingest.log()
    finally:
        for sim in sims:
            sim.close()
        ingest.stop()
        broker.stop()


def test_time_series_outage_delays_the_mirror_and_loses_nothing(
    mosquitto: MosquittoServer, engine: sa.Engine, pg_url: str, tmp_path: Path, tag: str
) -> None:
    vm = VictoriaMetricsServer(tmp_path / "vm")
    vm.start()
    client_id = f"ingest-{tag}"
    env = ingest_env(
        pg_url,
        mosquitto.port,
        f"g{tag}",
        client_id,
        tsdb_url=vm.url,
        tsdb_token="test-token-0123456789abcdef",
        mirror_idle_ms="100",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    ingest.start()
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    try:
        messages, readings = _plan(engine, gw.gateway_id, tag, 2000, 50)
        for message in messages[:20]:
            gw.publish(message)
        drain([gw], timeout_s=60)
        wait_until(lambda: cursor_position(engine, "tsdb") == last_reading_id(engine), 30, "mirror")
        vm.stop()
        for message in messages[20:]:
            gw.publish(message)
        drain([gw], timeout_s=60)  # the record store keeps taking readings
        assert reading_count(engine) == 2000
        time.sleep(1.0)
        assert cursor_position(engine, "tsdb") < last_reading_id(engine), "nothing to write to"
        assert "time-series server unreachable" in ingest.log()
        vm.start()
        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 60, "the mirror to catch up")
        vm.force_flush()
        samples = vm_samples(vm.url, f"p{tag}")
        assert set(samples) == expected_samples(readings)
        assert set(samples.values()) == {1}
    finally:
        gw.close()
        ingest.stop()
        vm.stop()
        end_session(mosquitto.port, client_id)


def test_sigkill_between_the_mirror_write_and_its_cursor_commit_leaves_one_sample_each(  # noqa: PLR0917
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
    engine: sa.Engine,
    pg_url: str,
    tmp_path: Path,
    tag: str,
) -> None:
    # The second write of 200 readings reaches VictoriaMetrics, then ingest dies before the
    # cursor moves: the restarted mirror writes those 200 again. With the deduplication flag
    # (shipped config and fixture) the server still holds exactly one sample per value.
    client_id = f"ingest-{tag}"
    env = ingest_env(
        pg_url,
        mosquitto.port,
        f"g{tag}",
        client_id,
        tsdb_url=victoria_metrics.url,
        tsdb_token="test-token-0123456789abcdef",
        mirror_batch="200",
        mirror_idle_ms="50",
    )
    ingest = IngestProcess(tmp_path, "ingest", env)
    gw = GatewaySim(mosquitto.port, f"gw-{tag}")
    try:
        messages, readings = _plan(engine, gw.gateway_id, tag, 1000, 100)
        ingest.start(tsdb_url="http://127.0.0.1:9")  # store everything, mirror nothing yet
        for message in messages:
            gw.publish(message)
        drain([gw], timeout_s=60)  # all stored before the mirror runs with the failpoint
        ingest.stop()
        assert cursor_position(engine, "tsdb") == 0
        ingest.start(may_exit=True, failpoint="mirror_after_write", failpoint_batch="2")
        assert ingest.wait_killed() == -9, ingest.log()
        assert "failpoint mirror_after_write: SIGKILL" in ingest.log()
        assert cursor_position(engine, "tsdb") < last_reading_id(engine)
        ingest.start()
        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 60, "the mirror to catch up")
        victoria_metrics.force_flush()
        samples = vm_samples(victoria_metrics.url, f"p{tag}")
        assert set(samples) == expected_samples(readings)
        doubled = sum(1 for n in samples.values() if n > 1)
        assert doubled == 0, f"{doubled} of {len(samples)} samples were stored more than once"
    finally:
        gw.close()
        ingest.stop()
        end_session(mosquitto.port, client_id)


def test_two_ingest_processes_share_one_subscription_and_store_everything_once(
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
    engine: sa.Engine,
    pg_url: str,
    tmp_path: Path,
) -> None:
    tag = uuid.uuid4().hex[:8]
    extra = {"tsdb_url": victoria_metrics.url, "tsdb_token": "test-token-0123456789abcdef"}
    replicas = [
        IngestProcess(
            tmp_path,
            f"ingest{i}",
            ingest_env(pg_url, mosquitto.port, f"g{tag}", f"in{i}-{tag}", **extra),
        )
        for i in range(2)
    ]
    sims: list[GatewaySim] = []
    try:
        for replica in replicas:
            replica.start()
        sims = [GatewaySim(mosquitto.port, f"gw{i}-{tag}") for i in range(2)]
        plans = {s.gateway_id: _plan(engine, s.gateway_id, tag, 2000, 20) for s in sims}
        for sim in sims:
            for message in plans[sim.gateway_id][0]:
                sim.publish(message, wait=False)
        drain(sims, timeout_s=60)
        all_readings = [r for _, rs in plans.values() for r in rs]
        report = check_delivery(engine, {r.reading_id for r in all_readings})
        assert report.ok, f"missing {len(report.missing)}, duplicated {report.duplicate_rows}"
        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 60, "the mirror")
        for replica in replicas:
            replica.stop()
        shares = [_counter(r.log(), "messages") for r in replicas]
        assert all(share > 0 for share in shares), shares
        assert sum(shares) >= 200
        victoria_metrics.force_flush()
        samples = vm_samples(victoria_metrics.url, f"p{tag}")
        assert set(samples) == expected_samples(all_readings)
        assert set(samples.values()) == {1}
    finally:
        for sim in sims:
            sim.close()
        for i, replica in enumerate(replicas):
            replica.stop()
            end_session(mosquitto.port, f"in{i}-{tag}")
