"""Start-up: wait for the record store before a long-running process begins its work.

Every long-running server process (ingest, the rules engine, the delivery worker, the API)
needs the record store, and each already rides out an outage once it runs. At start-up the
database may simply not be up yet (a host reboot, compose starting everything at once), so
instead of exiting, the process waits: it probes with ``SELECT 1``, logs one line per attempt
naming the process, the database (never its password) and the reason, and retries with a
doubling delay (0.5 s up to 10 s). Refusals that waiting cannot fix (wrong password, no such
database) are configuration errors and end the wait at once.

Shared here because every server process already depends on `ingest.store` for its engine;
call `wait_for_database(url, "api")` in a composition root before migrating or serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ingest.errors import StoreError
from ingest.store import make_engine

log = logging.getLogger(__name__)

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0
# PostgreSQL SQLSTATEs that retrying cannot fix: authentication, authorization, no database.
_FATAL_SQLSTATES = frozenset({"28000", "28P01", "3D000", "42501"})
_FATAL_PHRASES = (
    "password authentication failed",
    "does not exist",  # role or database
    "no pg_hba.conf entry",
)


def retry_delays(first_s: float = FIRST_DELAY_S, max_s: float = MAX_DELAY_S) -> Iterator[float]:
    """The waits between attempts: `first_s`, doubling, capped at `max_s`, forever."""
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, max_s)


def database_label(url: str) -> str:
    """The database as a log line may name it: backend, host, port and name, no credentials."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"sqlite {parsed.database or ':memory:'}"
    return f"{parsed.get_backend_name()} {parsed.host}:{parsed.port or ''}/{parsed.database}"


def _reason(exc: SQLAlchemyError) -> tuple[str, bool]:
    """A one-line reason, and whether waiting could fix it."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    sqlstate = getattr(orig, "sqlstate", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    # psycopg reports refusals at connection time without a SQLSTATE: read the server's words.
    fatal = sqlstate in _FATAL_SQLSTATES or any(p in first for p in _FATAL_PHRASES)
    return f"{type(orig or exc).__name__}: {first}"[:300], not fatal


def wait_for_database(
    url: str,
    process: str,
    *,
    stop: threading.Event | None = None,
    delays: Iterator[float] | None = None,
) -> bool:
    """Block until the database at `url` answers; False if `stop` was set while waiting.

    Raises:
        StoreError: the URL is not usable, the database refuses for a reason waiting cannot
            fix (authentication, a database that does not exist), or a finite `delays` ran out.
    """
    engine = make_engine(url, pool_size=1)
    stop = stop or threading.Event()
    label = database_label(url)
    try:
        for attempt, delay in enumerate(delays or retry_delays(), start=1):
            try:
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
            except SQLAlchemyError as exc:
                reason, transient = _reason(exc)
                if not transient:
                    raise StoreError(f"{process}: record store {label} refused: {reason}") from exc
                log.warning(
                    "%s: waiting for the record store %s (attempt %d: %s); retrying in %.1f s",
                    process,
                    label,
                    attempt,
                    reason,
                    delay,
                )
                if stop.wait(delay):
                    return False
                continue
            if attempt > 1:
                log.info("%s: record store %s is up after %d attempts", process, label, attempt)
            return True
        raise StoreError(f"{process}: record store {label} still unreachable; gave up")
    finally:
        engine.dispose()
