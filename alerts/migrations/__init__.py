"""Alembic environment of the rules engine (version table `alembic_version_alerts`)."""
