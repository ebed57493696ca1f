"""The runner's first step loads its window by measurement time and then follows the cursor:
no reading may fall between the two. Seen in the demo on a loaded machine: ingest committed the
back-filled history out of measurement order, and the history review (stepping its clock from
the first reading) never saw the level-2 hypos committed before that first reading."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from alerts.engine import store as alert_store
from alerts.engine import tables
from alerts.engine.runner import Runner
from ingest.store import make_engine
from ingest.store import migrate as ingest_migrate
from tests.alerts.engine.scenario import NOW
from tests.alerts.engine.support import reading, store


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ingest_migrate(url)
    alert_store.migrate(url)
    the_engine = make_engine(url)
    yield the_engine
    the_engine.dispose()


def _open(engine: sa.Engine) -> list[str]:
    a = tables.alerts.c
    with engine.connect() as conn:
        return list(conn.execute(sa.select(a.rule_id).where(a.status == "open")).scalars())


def test_a_reading_measured_after_the_first_step_but_committed_earlier_is_evaluated(
    engine: sa.Engine,
) -> None:
    first = NOW - timedelta(hours=3)
    hypo = NOW - timedelta(hours=1)
    # Committed first (the lower id), measured two hours after the other one.
    store(engine, [reading("p1", hypo, 2, glucose=2.6)], NOW)
    store(engine, [reading("p1", first, 1, glucose=6.0)], NOW)
    runner = Runner(engine)
    runner.step(first + timedelta(seconds=1))  # the hypo is in the future here
    assert _open(engine) == []
    runner.step(hypo + timedelta(seconds=1))
    assert _open(engine) == ["glucose.hypo_l2"]


def test_a_restarted_runner_keeps_a_reading_from_a_clock_ahead(engine: sa.Engine) -> None:
    # A meter whose clock runs 20 minutes ahead: its reading is read (and the cursor moves past
    # it) before its time has come; a new process must still see it when it comes.
    ahead = NOW + timedelta(minutes=20)
    store(engine, [reading("p1", ahead, 1, glucose=2.6)], NOW)
    Runner(engine).step(NOW)
    restarted = Runner(engine)  # a new process loads its window while the reading is ahead
    restarted.step(NOW + timedelta(minutes=1))
    assert _open(engine) == []
    restarted.step(ahead + timedelta(seconds=1))
    assert _open(engine) == ["glucose.hypo_l2"]
