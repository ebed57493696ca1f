"""The data-freshness checker: facts from the record store in, technical episodes out.

One step, one transaction: read the hubs' status and heartbeats and their device contacts
(`ingest.schema.hub_status`, `device_contacts`, written by ingest), and the readings the rules
engine has not evaluated yet (after its cursor); compute the active conditions and the episode
changes (`alerts.freshness.core`); write them with the engine's store (`alerts`, history,
`alert_events`) and hand the events to the delivery sink, so technical findings are
delivered, acknowledged and escalated like any alert.

It runs as its own process (`homevitals alerts freshness`), apart from the engine: a stuck
or crashed engine is exactly what `technical.pipeline_behind` must still report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from alerts.engine import store, tables
from alerts.engine.episodes import OpenEpisode
from alerts.events import AlertEvent
from alerts.freshness.core import (
    RULES,
    DeviceFact,
    FreshnessParams,
    HubFact,
    PipelineFact,
    announcements,
    conditions,
    transitions,
)
from ingest import schema

log = logging.getLogger(__name__)

NAME = "freshness"
# pg_advisory_xact_lock key: one checker writes at a time ("hvfresh" in ASCII).
LOCK_KEY = 0x6876667265736800 & 0x7FFF_FFFF_FFFF_FFFF
Clock = Callable[[], datetime]


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make every time aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def load_facts(
    conn: sa.Connection, engine_name: str = store.DEFAULT_ENGINE
) -> tuple[list[HubFact], list[DeviceFact], list[PipelineFact]]:
    """The hubs, their devices, and the patients with readings the engine has not evaluated."""
    h, d, r = schema.hub_status.c, schema.device_contacts.c, schema.readings.c
    hubs = [
        HubFact(row.gateway_id, bool(row.online), _utc(row.status_at), _utc(row.heartbeat_at),
                bool(row.storage_full), row.clock_offset_s)
        for row in conn.execute(sa.select(h.gateway_id, h.online, h.status_at, h.heartbeat_at,
                                          h.storage_full, h.clock_offset_s))
    ]  # fmt: skip
    devices = [
        DeviceFact(row.device_id, row.gateway_id, row.patient_id, row.kind,
                   _utc(row.last_contact_at), _utc(row.paired_at) or row.paired_at)
        for row in conn.execute(
            sa.select(d.device_id, d.gateway_id, d.patient_id, d.kind, d.last_contact_at,
                      d.paired_at).order_by(d.gateway_id, d.device_id)
        )
    ]  # fmt: skip
    cursor = store.read_cursor(conn, engine_name)
    waiting = conn.execute(
        sa.select(r.patient_id, sa.func.min(r.stored_at))
        .where(r.id > cursor)
        .group_by(r.patient_id)
        .order_by(r.patient_id)
    )
    pipeline = [PipelineFact(str(pid), _utc(since) or since) for pid, since in waiting]
    return hubs, devices, pipeline


def _open_technical(conn: sa.Connection) -> list[OpenEpisode]:
    a = tables.alerts.c
    query = sa.select(
        a.alert_id, a.patient_id, a.rule_id, a.subject, a.revision, a.anchor_reading_id,
        a.last_reading_id,
    ).where(a.status == "open", a.rule_id.in_(sorted(RULES)))  # fmt: skip
    return [OpenEpisode(*row) for row in conn.execute(query)]


def step(
    engine: sa.Engine,
    now: datetime,
    params: FreshnessParams,
    *,
    sink: store.EventSink | None = None,
) -> list[AlertEvent]:
    """One evaluation at `now`; returns the events written (opened, resolved, gateway.offline).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the record store failed (nothing was written).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
        hubs, devices, pipeline = load_facts(conn)
        active = conditions(now, hubs, devices, pipeline, params)
        changes = transitions(active, _open_technical(conn), now)
        if not changes:
            return []
        events = store.apply_changes(conn, changes, now=now, cursor=0, sink=sink, name=NAME)
        extra = announcements(changes, now)
        store.record_events(conn, extra, sink)
    for event in events + extra:
        log.info("freshness: %s %s (%s)", event.type.value, event.rule_id, event.alert_id)
    return events + extra


def run(
    engine: sa.Engine,
    params: FreshnessParams,
    stop: threading.Event,
    *,
    interval_s: float,
    clock: Clock,
    sink: store.EventSink | None = None,
) -> None:
    """Step every `interval_s` until `stop`; a failed step is logged once and retried."""
    failing = False
    while not stop.is_set():
        try:
            step(engine, clock(), params, sink=sink)
        except SQLAlchemyError as exc:
            if not failing:
                log.error("freshness: evaluation not committed, retrying: %s", type(exc).__name__)
            failing = True
        else:
            if failing:
                log.info("freshness: evaluations committed again")
            failing = False
        stop.wait(interval_s)
