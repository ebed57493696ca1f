"""Alembic environment of webhook delivery.

Its own version table (`alembic_version_delivery`) keeps this revision chain apart from the other
packages' environments in the same database. Deliveries refer to the care-team record's webhook
endpoints, so `migrate` upgrades the record (`careteam.migrations`) first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from careteam import migrations as record_migrations
from ingest.store import make_engine

VERSION_TABLE: Final = "alembic_version_delivery"
HERE: Final = Path(__file__).parent


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic `Config` for this environment, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(url: str | sa.Engine, revision: str = "head") -> None:
    """Upgrade the database at `url` (or an engine) to `revision` (the latest by default).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database is unreachable or a migration fails.
    """
    engine = make_engine(url) if isinstance(url, str) else url
    try:
        record_migrations.migrate(engine)
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        if isinstance(url, str):
            engine.dispose()
