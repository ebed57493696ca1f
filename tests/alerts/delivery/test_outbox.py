"""The engine's event sink on real PostgreSQL: entitlement, replays, quarantine, transactions."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
import sqlalchemy as sa

from alerts.delivery import endpoints
from alerts.delivery.errors import UnsafeUrlError
from alerts.delivery.outbox import enqueue_events
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.tables import (
    alert_confirmations,
    webhook_deliveries,
    webhook_event_quarantine,
    webhook_events,
)
from alerts.events import AlertEvent, EventType, Priority, event_id_for
from careteam import registry
from careteam.errors import InvalidFieldError, NotFoundError
from tests.alerts.delivery import builders as b
from tests.alerts.delivery.conftest import FakeClock


def deliveries(db: sa.Engine) -> set[tuple[str, str]]:
    with db.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_deliveries.c.event_id, webhook_deliveries.c.endpoint_id)
        )
        return {(r.event_id, r.endpoint_id) for r in rows}


def test_one_delivery_per_entitled_endpoint(db: sa.Engine, clock: FakeClock) -> None:
    at = clock()
    with db.begin() as conn:
        follows = b.make_team(conn, at, "p1", name="follows")
        other = b.make_team(conn, at, "p2", name="other")
        backup = b.make_team(conn, at, "p1", tier=1, name="backup")
        wants_all = b.add_endpoint(conn, follows, "http://127.0.0.1:9/a", at).endpoint_id
        only_resolved = b.add_endpoint(
            conn, follows, "http://127.0.0.1:9/b", at, types=("alert.resolved",)
        ).endpoint_id
        b.add_endpoint(conn, other, "http://127.0.0.1:9/c", at)  # another patient's team
        b.add_endpoint(conn, backup, "http://127.0.0.1:9/d", at)  # tier 1: only on escalation
        disabled = b.add_endpoint(conn, follows, "http://127.0.0.1:9/e", at).endpoint_id
        endpoints.set_endpoint_enabled(conn, disabled, False, at, "test")
        event = b.opened("a1", "p1", at)
        enqueue_events(conn, [event])
    assert deliveries(db) == {(event.event_id, wants_all)}
    resolved = AlertEvent(
        event_id_for(EventType.ALERT_RESOLVED, "a1", 2),
        EventType.ALERT_RESOLVED,
        at,
        "p1",
        "a1",
        "bp.stage2",
        Priority.HIGH,
        2,
    )
    with db.begin() as conn:
        enqueue_events(conn, [resolved])
        state = conn.execute(sa.select(alert_confirmations)).one()
    assert deliveries(db) == {
        (event.event_id, wants_all),
        (resolved.event_id, wants_all),
        (resolved.event_id, only_resolved),
    }
    assert state.resolved_at == at and state.tier == 0


def test_a_replayed_event_is_absorbed(db: sa.Engine, clock: FakeClock) -> None:
    at = clock()
    with db.begin() as conn:
        team = b.make_team(conn, at, "p1")
        b.add_endpoint(conn, team, "http://127.0.0.1:9/a", at)
        b.add_endpoint(conn, team, "http://127.0.0.1:9/b", at)
    event = b.opened("a1", "p1", at)
    for _ in range(3):
        with db.begin() as conn:
            enqueue_events(conn, [event, event])
    with db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(webhook_events)).scalar() == 1
    assert len(deliveries(db)) == 2


def test_deliveries_live_and_die_with_the_callers_transaction(
    db: sa.Engine, clock: FakeClock
) -> None:
    at = clock()
    with db.begin() as conn:
        team = b.make_team(conn, at, "p1")
        b.add_endpoint(conn, team, "http://127.0.0.1:9/a", at)
    with pytest.raises(RuntimeError, match="engine failed"), db.begin() as conn:
        enqueue_events(conn, [b.opened("a1", "p1", at)])
        raise RuntimeError("engine failed after the sink ran")
    assert deliveries(db) == set()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"alert_id": None}, "alert_id"),
        ({"event_id": ""}, "event_id"),
        ({"occurred_at": datetime(2026, 1, 1)}, "occurred_at"),
        ({"revision": 0}, "revision"),
        ({"type": EventType.DELIVERY_FAILING}, "type"),
    ],
)
def test_invalid_events_are_quarantined_not_raised(
    db: sa.Engine, clock: FakeClock, change: dict[str, object], field: str
) -> None:
    at = clock()
    good = b.opened("a2", "p1", at)
    bad = replace(b.opened("a1", "p1", at), **change)  # type: ignore[arg-type]
    with db.begin() as conn:
        team = b.make_team(conn, at, "p1")
        b.add_endpoint(conn, team, "http://127.0.0.1:9/a", at)
        enqueue_events(conn, [bad, good])
    with db.connect() as conn:
        kept = conn.execute(sa.select(webhook_event_quarantine)).one()
    assert kept.field == field and "'rule_id': 'bp.stage2'" in kept.raw
    assert {e for e, _ in deliveries(db)} == {good.event_id}


def test_registration_validates_every_field(db: sa.Engine, clock: FakeClock) -> None:
    at = clock()
    with db.begin() as conn:
        team = b.make_team(conn, at, "p1")
        with pytest.raises(UnsafeUrlError):
            endpoints.register_endpoint(
                conn,
                team.team_id,
                "http://127.0.0.1:9/",
                ["alert.opened"],
                at=at,
                policy=SsrfPolicy(),
                box=b.BOX,
            )
        with pytest.raises(InvalidFieldError) as caught:
            b.add_endpoint(conn, team, "http://127.0.0.1:9/", at, types=("alert.bogus",))
        assert caught.value.field == "event_types"
        with pytest.raises(NotFoundError) as missing:
            registry.add_team(conn, "no-such-institution", "x", at)
        assert missing.value.field == "institution_id"
        with pytest.raises(InvalidFieldError) as role:
            registry.add_member(conn, team.team_id, "x", role="wizard", tier=0, at=at)
        assert role.value.field == "role"
        with pytest.raises(InvalidFieldError) as tier:
            registry.assign_patient(conn, team.team_id, "p1", at, tier=99)
        assert tier.value.field == "escalation_tier"


def test_the_migration_matches_the_table_definitions(db: sa.Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from alerts.delivery.tables import metadata as delivery_metadata
    from careteam.tables import metadata as record_metadata

    both = sa.MetaData()
    for table in (*record_metadata.tables.values(), *delivery_metadata.tables.values()):
        table.to_metadata(both)
    with db.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, both) if d[0] != "remove_table"]
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version_delivery")).scalar()
    assert diff == []
    assert version == "d0005"
