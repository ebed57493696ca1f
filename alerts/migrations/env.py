"""Alembic environment of the rules engine.

The engine keeps its own revision chain and version table (`alembic_version_alerts`) so that
packages developed in parallel never share one chain. `alerts.engine.store.migrate` runs it
with an open connection in `config.attributes["connection"]`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from alerts.engine.tables import metadata

VERSION_TABLE = "alembic_version_alerts"


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run the alerts migrations through alerts.engine.store.migrate(url)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


_main()
