"""Commit notifications (`ingest.notify`) on a real PostgreSQL: a committed batch wakes a
listener, a rolled-back one does not, a killed LISTEN connection is reopened, an interrupt
ends a wait; SQLite gets the polling waker."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingest.notify import READINGS_CHANNEL, Listener, Poller, open_waker
from ingest.store import make_engine, migrate, write_batch
from tests.ingest.support import make_reading

NOW = datetime(2026, 11, 2, tzinfo=UTC)


class _Rollback(Exception):
    pass


def _abort(point: str) -> None:
    if point == "before_commit":
        raise _Rollback


def test_listener_wakes_on_commit_only_and_survives_a_killed_connection(pg_url: str) -> None:
    migrate(pg_url)
    engine = make_engine(pg_url)
    waker = open_waker(engine, [READINGS_CHANNEL])
    try:
        assert isinstance(waker, Listener) and waker.listening
        assert waker.wait(0.05) is False  # nothing committed yet

        with pytest.raises(_Rollback):  # rolled back inside the transaction: no notification
            write_batch(engine, [make_reading("gw", "p1", "S1", 0)], [], now=NOW, hook=_abort)
        assert waker.wait(0.5) is False

        write_batch(engine, [make_reading("gw", "p1", "S1", 1)], [], now=NOW)
        assert waker.wait(30) is True
        assert waker.notifications == 1

        with engine.begin() as conn:  # the server drops the LISTEN connection
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query ILIKE 'LISTEN%' AND datname = current_database()"
                )
            ).scalars()
            assert list(killed) == [True]
        assert waker.wait(30) is True  # lost: the caller does a pass
        assert waker.wait(30) is True  # reopened: the caller does a pass again
        assert waker.listening
        write_batch(engine, [make_reading("gw", "p1", "S1", 2)], [], now=NOW)
        assert waker.wait(30) is True
    finally:
        waker.close()
        engine.dispose()


def test_interrupt_ends_a_long_wait(pg_url: str) -> None:
    migrate(pg_url)
    engine = make_engine(pg_url)
    waker = open_waker(engine, [READINGS_CHANNEL])
    try:
        timer = threading.Timer(0.2, waker.interrupt)
        started = time.monotonic()
        timer.start()
        assert waker.wait(600) is False
        assert time.monotonic() - started < 60  # ended by the interrupt, not the timeout
    finally:
        waker.close()
        engine.dispose()


def test_sqlite_polls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    waker = open_waker(engine, [READINGS_CHANNEL])
    assert isinstance(waker, Poller)
    write_batch(engine, [make_reading("gw", "p1", "S1", 1)], [], now=NOW)
    assert waker.wait(0.01) is False  # no notifications on SQLite: the caller polls
    waker.interrupt()
    assert waker.wait(600) is False  # an interrupt before the wait ends it at once
    engine.dispose()
