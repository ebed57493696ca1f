"""Fixtures of the delivery tests: a migrated PostgreSQL database, a loopback receiver, a clock."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from alerts.delivery.migrations import migrate
from tests.alerts.delivery.receiver import ScriptedReceiver


@dataclass
class FakeClock:
    """Starts at the real time (receivers check timestamps against it) and moves when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(pg_url: str) -> Iterator[sa.Engine]:
    """A fresh PostgreSQL database with delivery's migrations applied."""
    engine = sa.create_engine(pg_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[ScriptedReceiver]:
    receiver = ScriptedReceiver()
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(module_receiver: ScriptedReceiver) -> ScriptedReceiver:
    module_receiver.clear()
    return module_receiver
