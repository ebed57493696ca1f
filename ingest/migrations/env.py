"""Alembic environment of the ingest package.

Ingest keeps its own revision chain and version table (`alembic_version_ingest`), so packages
developed in parallel (alerts has its own) never fight over one chain. `ingest.store.migrate`
runs it programmatically with an open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from ingest.schema import metadata

VERSION_TABLE = "alembic_version_ingest"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run ingest migrations through ingest.store.migrate(url)")
    _run(connection)


_main()
