"""Alembic env: runs online against the connection `migrate()` passes in."""

from __future__ import annotations

from alembic import context

from alerts.delivery.migrations import VERSION_TABLE
from alerts.delivery.tables import metadata


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Other packages keep their tables in the same database: never touch them.
    return type_ != "table" or name in metadata.tables


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through alerts.delivery.migrations.migrate(url)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_object=_include,
)
with context.begin_transaction():
    context.run_migrations()
