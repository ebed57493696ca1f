"""The audit trail's hash chain: intact, and tamper evidence against edit, delete, reorder,
insert and truncation (with an anchor), on the stored table and through `homevitals audit`."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from careteam import audit_store
from careteam.audit import Actor, AuditRecord, chain, to_fhir, verify_chain
from careteam.cli import audit_app
from careteam.errors import InvalidFieldError
from careteam.tables import audit_log
from tests.careteam.conftest import T0

NURSE = Actor("member", "m-1", source="203.0.113.7", purpose="token-1")


def _fill(engine: sa.Engine, n: int = 6) -> None:
    with engine.begin() as conn:
        for i in range(n):
            audit_store.append(
                conn,
                audit_store.record(
                    NURSE, "data.read", patient_id="p1", data_kind="glucose", detail={"i": i}
                ),
                T0 + timedelta(minutes=i),
            )


def _verify(engine: sa.Engine, anchor: audit_store.Anchor | None = None) -> object:
    with engine.connect() as conn:
        return audit_store.verify(conn, anchor)


def test_an_intact_chain_verifies_and_reads_back(store: sa.Engine) -> None:
    _fill(store)
    with store.connect() as conn:
        result = audit_store.verify(conn)
        head = audit_store.head(conn)
        mine = audit_store.entries(conn, patient_id="p1", limit=3)
    assert result.ok and result.entries == 6 and result.head == head
    assert [e.seq for e in mine] == [1, 2, 3]
    assert mine[0].source == "203.0.113.7" and mine[0].purpose == "token-1"


def test_an_edited_entry_is_named(store: sa.Engine) -> None:
    _fill(store)
    with store.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 3).values(actor_id="m-2"))
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 3  # type: ignore[attr-defined]
    assert "changed" in result.problem  # type: ignore[attr-defined]


def test_a_deleted_entry_is_named(store: sa.Engine) -> None:
    _fill(store)
    with store.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 4))
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 4  # type: ignore[attr-defined]


def test_reordered_entries_are_named(store: sa.Engine) -> None:
    _fill(store)
    with store.begin() as conn:  # swap the positions of entries 2 and 5
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 2).values(seq=-2))
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 5).values(seq=2))
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == -2).values(seq=5))
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 2  # type: ignore[attr-defined]


def test_an_inserted_entry_is_named(store: sa.Engine) -> None:
    _fill(store)
    with store.begin() as conn:
        # A forger renumbers the tail and slips in a well-formed entry chained to entry 3.
        for seq in range(6, 3, -1):
            conn.execute(sa.update(audit_log).where(audit_log.c.seq == seq).values(seq=seq + 1))
        third = conn.execute(sa.select(audit_log.c.hash).where(audit_log.c.seq == 3)).scalar()
        forged = chain(
            AuditRecord("member", "m-9", "data.read", patient_id="p1"),
            seq=4,
            prev_hash=str(third),
            at=T0,
        )
        conn.execute(
            audit_log.insert().values(**{k: getattr(forged, k) for k in audit_log.c.keys()})  # noqa: SIM118
        )
    result = _verify(store)
    assert not result.ok and result.first_bad_seq == 5  # type: ignore[attr-defined]


def test_a_cut_tail_is_caught_only_with_an_anchor(store: sa.Engine) -> None:
    _fill(store)
    with store.connect() as conn:
        anchor = audit_store.head(conn)
    assert anchor is not None
    with store.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq >= 5))
    assert _verify(store).ok  # type: ignore[attr-defined]  # a shorter chain is self-consistent
    result = _verify(store, anchor)
    assert not result.ok and result.first_bad_seq == 5  # type: ignore[attr-defined]
    assert "cut off" in result.problem  # type: ignore[attr-defined]


def test_the_cli_verifies_anchors_and_names_the_bad_entry(pg_url: str, tmp_path: Path) -> None:
    from careteam.db import make_engine
    from careteam.migrations import migrate

    engine = make_engine(pg_url)
    migrate(engine)
    _fill(engine)
    runner = CliRunner()
    ok = runner.invoke(audit_app, ["verify", "--db", pg_url])
    assert ok.exit_code == 0 and "6 entries" in ok.stdout
    anchor = tmp_path / "anchor.json"
    anchor.write_text(runner.invoke(audit_app, ["anchor", "--db", pg_url]).stdout)
    assert json.loads(anchor.read_text())["seq"] == 6
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_log).where(audit_log.c.seq == 6))
    assert runner.invoke(audit_app, ["verify", "--db", pg_url]).exit_code == 0
    cut = runner.invoke(audit_app, ["verify", "--db", pg_url, "--anchor", str(anchor)])
    assert cut.exit_code == 1 and "entry 6" in cut.stderr
    with engine.begin() as conn:
        conn.execute(sa.update(audit_log).where(audit_log.c.seq == 2).values(outcome="denied"))
    edited = runner.invoke(audit_app, ["verify", "--db", pg_url])
    assert edited.exit_code == 1 and "BROKEN at entry 2" in edited.stderr
    engine.dispose()


def test_bad_records_are_refused_by_name() -> None:
    for record, field in (
        (AuditRecord("robot", "x", "data.read"), "actor_kind"),
        (AuditRecord("member", "x", "data.steal"), "action"),
        (AuditRecord("member", "x", "data.read", outcome="maybe"), "outcome"),
    ):
        with pytest.raises(InvalidFieldError) as caught:
            chain(record, seq=1, prev_hash="0" * 64, at=T0)
        assert caught.value.field == field


def test_entries_map_to_fhir_audit_events() -> None:
    entry = chain(
        audit_store.record(NURSE, "data.read", patient_id="p1", outcome="denied"),
        seq=1,
        prev_hash="0" * 64,
        at=T0,
    )
    event = to_fhir(entry)
    assert event["resourceType"] == "AuditEvent" and event["action"] == "R"
    assert event["outcome"] == "4"  # serious failure: the read was refused
    assert event["entity"][0]["what"] == {"reference": "Patient/p1"}  # type: ignore[index]
    assert verify_chain([entry]).ok
