"""End to end through real Mosquitto, PostgreSQL and VictoriaMetrics, ingest as a subprocess.

10,000 readings from several simulated gateways, with 1% malformed payloads and 10% duplicates,
must end up exactly once in the record store and in the time-series mirror; every malformed
payload in quarantine; every gateway receipted for all of its valid readings.
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from devices import Reading
from devices.wire import readings_topic
from ingest import schema
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
    vm_samples,
    wait_until,
)
from tests.support.record import enrol
from tests.support.servers import MosquittoServer, VictoriaMetricsServer

GATEWAYS = 4
PER_GATEWAY = 2500
PER_MESSAGE = 25


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    migrate(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def _malformed_reading(reading: Reading, number: int) -> dict[str, object]:
    """A reading that must be rejected, by one of several rules."""
    from devices import reading_to_json

    raw = reading_to_json(reading)
    rule = number % 3
    if rule == 0:
        raw["values"] = {"glucose_mmol_l": 999.0} if "glucose" in reading.kind else {}
    elif rule == 1:
        raw["reading_id"] = str(uuid.uuid4())  # does not match device/kind/sequence/time
    else:
        raw["measured_at"] = "yesterday"
    return raw


def test_ten_thousand_readings_with_malformed_and_duplicates_land_exactly_once(  # noqa: PLR0917
    mosquitto: MosquittoServer,
    victoria_metrics: VictoriaMetricsServer,
    engine: sa.Engine,
    pg_url: str,
    tmp_path: Path,
    tag: str,
) -> None:
    rng = random.Random(6)
    ingest = IngestProcess(
        tmp_path,
        "ingest",
        ingest_env(
            pg_url,
            mosquitto.port,
            f"g{tag}",
            f"ingest-{tag}",
            tsdb_url=victoria_metrics.url,
            tsdb_token="test-token-0123456789abcdef",
            batch_max_messages="50",
        ),
    )
    ingest.start()
    sims: list[GatewaySim] = []
    try:
        valid: dict[str, Reading] = {}
        per_gateway_ids: dict[str, set[str]] = {}
        quarantined_expected = 0
        plans: dict[str, list[Outgoing]] = {}
        for g in range(GATEWAYS):
            gw = f"gw{g}-{tag}"
            readings = [
                make_reading(gw, f"p{tag}-{g}-{i % 5}", f"SN{tag}{g}{i % 5}", i)
                for i in range(PER_GATEWAY)
            ]
            valid.update((r.reading_id, r) for r in readings)
            per_gateway_ids[gw] = {r.reading_id for r in readings}
            plans[gw] = [
                batch_payload(gw, readings[i : i + PER_MESSAGE])
                for i in range(0, PER_GATEWAY, PER_MESSAGE)
            ]
        # 10% duplicates: 1,000 readings sent again in extra messages, some by another gateway
        # (the same record fetched by a second hub has the same reading id).
        gw_names = sorted(plans)
        dupes = rng.sample(sorted(valid.values(), key=lambda r: r.reading_id), 1000)
        for i in range(0, len(dupes), PER_MESSAGE):
            via = gw_names[(i // PER_MESSAGE) % GATEWAYS]
            copies = [dataclasses.replace(r, gateway_id=via) for r in dupes[i : i + PER_MESSAGE]]
            plans[via].append(batch_payload(via, copies))
            per_gateway_ids[via] |= {r.reading_id for r in copies}
        # 1% malformed: 70 bad readings inside otherwise good batches, 30 bad envelopes.
        bad_ids: dict[str, set[str]] = {gw: set() for gw in plans}
        for n in range(70):
            gw = gw_names[n % GATEWAYS]
            victim = make_reading(gw, f"p{tag}-bad", f"SNBAD{tag}", 10_000 + n)
            raw = _malformed_reading(victim, n)
            good = make_reading(gw, f"p{tag}-{gw}-x", f"SNX{tag}{gw}", 20_000 + n)
            valid[good.reading_id] = good
            per_gateway_ids[gw].add(good.reading_id)
            body = json.loads(batch_payload(gw, [good]).payload)
            body["readings"].append(raw)
            payload = json.dumps(body).encode()
            claimed = str(raw["reading_id"])
            bad_ids[gw].add(claimed)
            plans[gw].append(Outgoing(payload, frozenset({good.reading_id, claimed})))
            quarantined_expected += 1
        envelopes: list[tuple[str, bytes]] = []
        for n in range(30):
            gw = gw_names[n % GATEWAYS]
            if n % 3 == 0:
                envelopes.append((readings_topic(gw), b"\xff not json %d" % n))
            elif n % 3 == 1:  # a gateway submitting for another gateway
                other = gw_names[(n + 1) % GATEWAYS]
                r = make_reading(other, f"p{tag}-other", f"SNO{tag}", 30_000 + n)
                envelopes.append((readings_topic(gw), batch_payload(other, [r]).payload))
            else:
                envelopes.append((readings_topic(gw), b'{"schema":"hv.batch/0","n":%d}' % n))
            quarantined_expected += 1
        assert len(valid) == GATEWAYS * PER_GATEWAY + 70
        # Every hub is enrolled for its patients; a hub re-sending another hub's record serves
        # that patient too (one household, two hubs).
        enrol(
            engine,
            {
                (gw, r.patient_id)
                for gw, ids in per_gateway_ids.items()
                for r in (valid[i] for i in ids if i in valid)
            },
        )
        assert quarantined_expected == 100

        sims = [GatewaySim(mosquitto.port, gw, resend_after_s=5.0) for gw in gw_names]
        by_name = {s.gateway_id: s for s in sims}
        for gw in gw_names:
            rng.shuffle(plans[gw])
        for round_ in range(max(len(p) for p in plans.values())):
            for gw in gw_names:
                if round_ < len(plans[gw]):
                    by_name[gw].publish(plans[gw][round_], wait=False)
        for topic, payload in envelopes:
            sims[0].publish_raw(topic, payload)
        drain(sims, timeout_s=90)

        report = check_delivery(engine, set(valid))
        assert report.ok, f"missing {len(report.missing)}, duplicated {report.duplicate_rows}"
        with engine.connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(schema.readings))
            assert stored.scalar_one() == len(valid)
            q_rows = conn.execute(sa.select(schema.quarantine)).all()
        assert len(q_rows) == quarantined_expected
        assert sum(1 for q in q_rows if q.item_index is None) == 30
        assert {q.payload for q in q_rows if q.item_index is None} == {p for _, p in envelopes}
        assert {q.reading_id for q in q_rows if q.item_index is not None} == set().union(
            *bad_ids.values()
        )
        for sim in sims:
            assert per_gateway_ids[sim.gateway_id] <= sim.receipted
            assert bad_ids[sim.gateway_id] <= sim.receipted

        top = last_reading_id(engine)
        wait_until(lambda: cursor_position(engine, "tsdb") == top, 60, "the mirror")
        victoria_metrics.force_flush()
        samples = vm_samples(victoria_metrics.url, f"p{tag}")
        assert set(samples) == expected_samples(valid.values())
        assert set(samples.values()) == {1}, "a point was written twice"
        assert f"p{tag}" not in ingest.log(), "patient identifiers in the log"
    finally:
        for sim in sims:
            sim.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")
