"""Fixtures of the API tests: one seeded PostgreSQL record and one served app per module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from ingest.store import make_engine
from tests.api.record import Seeded, seed
from tests.api.support import migrate_all, serve
from tests.support import servers


@pytest.fixture(scope="module")
def record_engine(postgres: servers.PostgresServer) -> Iterator[sa.Engine]:
    url = postgres.create_database(f"api_{uuid.uuid4().hex[:12]}")
    migrate_all(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def seeded(record_engine: sa.Engine) -> Seeded:
    return seed(record_engine)


@pytest.fixture(scope="module")
def base_url(record_engine: sa.Engine, seeded: Seeded) -> Iterator[str]:
    with serve(record_engine, rate_burst=10_000, page_default=2) as base:
        yield base
