"""Ingest stores a reading only from an enrolled hub for one of its patients (real Mosquitto,
PostgreSQL and ingest as a subprocess): enrolled / another hub's patient / unenrolled hub /
revoked hub. Refused readings are quarantined as ``not_enrolled``, receipted as quarantined (the
hub stops resending) and never take the place of the genuine reading with the same id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from careteam import enrolment_store
from devices.wire import PairingEvent
from ingest import schema
from ingest.enrolment import split_enrolled, split_pairings
from ingest.store import make_engine, migrate
from tests.ingest.support import (
    GatewaySim,
    IngestProcess,
    batch_payload,
    drain,
    end_session,
    ingest_env,
    make_reading,
)
from tests.support.record import TEST_ACTOR, enrol
from tests.support.servers import MosquittoServer


def test_split_names_the_field() -> None:
    mine = make_reading("gw-a", "p1", "SN1", 2)
    foreign = make_reading("gw-a", "p2", "SN2", 2)
    stray = make_reading("gw-x", "p1", "SN3", 2)
    split = split_enrolled([mine, foreign, stray], {"gw-a": frozenset({"p1"})}, {})
    assert split.kept == [mine]
    assert [(q.reading_id, q.field, q.reason) for q in split.refused] == [
        (foreign.reading_id, "patient_id", "not_enrolled"),
        (stray.reading_id, "gateway_id", "not_enrolled"),
    ]


def test_pairing_events_are_held_to_the_same_rule() -> None:
    at = datetime(2026, 12, 1, tzinfo=UTC)
    cuff = PairingEvent(
        "e1", "pair", "d1", "blood_pressure", "p1", ((1, "p1"), (2, "p2")),
        None, None, None, None, at, at,
    )  # fmt: skip
    kept, refused = split_pairings(
        {"gw-a": [cuff], "gw-b": [cuff], "gw-x": [cuff]},
        {"gw-a": frozenset({"p1", "p2"}), "gw-b": frozenset({"p1"})},
    )
    assert kept == {"gw-a": [cuff]}  # user 2's patient must be served too
    assert [(q.gateway_id, q.field, q.reason) for q in refused] == [
        ("gw-b", "patient_id", "not_enrolled"),
        ("gw-x", "gateway_id", "not_enrolled"),
    ]


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    migrate(pg_url)
    eng = make_engine(pg_url)
    yield eng
    eng.dispose()


def test_the_enforcement_matrix(
    mosquitto: MosquittoServer, engine: sa.Engine, pg_url: str, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    home, other, stranger, revoked = (f"gw-{n}-{tag}" for n in ("home", "other", "stranger", "rev"))
    enrol(engine, [(home, "pa"), (other, "pb"), (revoked, "pc")])
    with engine.begin() as conn:
        enrolment_store.revoke_gateway(
            conn, revoked, actor=TEST_ACTOR, at=datetime.now(UTC), accounts=None
        )
    ingest = IngestProcess(
        tmp_path, "ingest", ingest_env(pg_url, mosquitto.port, f"g{tag}", f"ingest-{tag}")
    )
    ingest.start()
    sims = {gw: GatewaySim(mosquitto.port, gw) for gw in (home, other, stranger, revoked)}
    try:
        genuine = make_reading(home, "pa", f"SN{tag}", 2)  # a low glucose of patient pa
        spoofed = make_reading(other, "pa", f"SN{tag}", 2)  # the same record, claimed by `other`
        assert spoofed.reading_id == genuine.reading_id
        foreign = make_reading(other, "pa", f"SNF{tag}", 4)
        own = make_reading(other, "pb", f"SNB{tag}", 2)
        unenrolled = make_reading(stranger, "pa", f"SNS{tag}", 2)
        after_revocation = make_reading(revoked, "pc", f"SNR{tag}", 2)
        # The spoof arrives first: it must neither be stored nor block the genuine reading.
        sims[other].publish(batch_payload(other, [spoofed, foreign, own]))
        sims[stranger].publish(batch_payload(stranger, [unenrolled]))
        sims[revoked].publish(batch_payload(revoked, [after_revocation]))
        drain([sims[other], sims[stranger], sims[revoked]], timeout_s=30)
        sims[home].publish(batch_payload(home, [genuine]))
        drain([sims[home]], timeout_s=30)
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(schema.readings.c.reading_id, schema.readings.c.gateway_id)
            ).all()
            kept = conn.execute(
                sa.select(
                    schema.quarantine.c.gateway_id,
                    schema.quarantine.c.reading_id,
                    schema.quarantine.c.field,
                    schema.quarantine.c.reason,
                )
            ).all()
        assert sorted(stored) == sorted([(genuine.reading_id, home), (own.reading_id, other)])
        assert sorted(kept) == sorted(
            [
                (other, spoofed.reading_id, "patient_id", "not_enrolled"),
                (other, foreign.reading_id, "patient_id", "not_enrolled"),
                (stranger, unenrolled.reading_id, "gateway_id", "not_enrolled"),
                (revoked, after_revocation.reading_id, "gateway_id", "not_enrolled"),
            ]
        )
        # Receipted as quarantined: the hubs retire them instead of resending forever.
        assert sims[other].quarantined == {spoofed.reading_id, foreign.reading_id}
        assert sims[stranger].quarantined == {unenrolled.reading_id}
        assert sims[revoked].quarantined == {after_revocation.reading_id}
        assert sims[home].quarantined == set()
        assert "quarantined: not_enrolled" in ingest.log()
    finally:
        for sim in sims.values():
            sim.close()
        ingest.stop()
        end_session(mosquitto.port, f"ingest-{tag}")
