"""Alembic environment of the care-team record (version table `alembic_version_careteam`).

Packages that refer to the record's tables (ingest's enrolment check, delivery's endpoints) run
`migrate` before their own migrations, so the record is always there first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from careteam.db import make_engine

VERSION_TABLE: Final = "alembic_version_careteam"
HERE: Final = Path(__file__).parent
# pg_advisory_xact_lock key: one migration of the record at a time ("hvcaretm" in ASCII).
LOCK_KEY: Final = 0x687663617265746D & 0x7FFF_FFFF_FFFF_FFFF


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic `Config` for this environment, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(url: str | sa.Engine, revision: str = "head") -> None:
    """Upgrade the record's tables at `url` (or an engine) to `revision` (the latest).

    Safe from several processes at once on PostgreSQL (an advisory lock serialises them).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database is unreachable or a migration fails.
    """
    engine = make_engine(url, pool_size=1) if isinstance(url, str) else url
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
            command.upgrade(alembic_config(conn), revision)
    finally:
        if isinstance(url, str):
            engine.dispose()
