"""Alembic env: runs online against the connection `careteam.migrations.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from careteam.migrations import VERSION_TABLE
from careteam.tables import metadata


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Other packages keep their tables in the same database: never touch them.
    return type_ != "table" or name in metadata.tables


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through careteam.migrations.migrate(url)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_object=_include,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
