"""Database engines for the record (adapter): SQLite gets WAL and synchronous=FULL.

``synchronous`` is a per-connection SQLite setting that is not stored in the file, so every
connection sets it (the record store's durability rule); PostgreSQL is used for deployments.
`ingest.store.make_engine` is this function (ingest builds on the record).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from careteam.errors import InvalidFieldError


def _sqlite_on_connect(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def make_engine(url: str, *, pool_size: int = 5) -> sa.Engine:
    """Create an engine for `url`; SQLite connections get WAL and synchronous=FULL.

    Raises:
        InvalidFieldError: the URL is not a usable database URL (field ``"db_url"``).
    """
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise InvalidFieldError("db_url", f"not a database URL: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    # hide_parameters: error messages and logs never carry patient data (no patient data in logs).
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=pool_size, hide_parameters=True)
