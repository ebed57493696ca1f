"""The demo's progress display: per patient, readings produced, stored, quarantined and mirrored,
alerts opened, webhooks delivered (verified by the care team's receiver) and acknowledged.

`poll_store` counts what the record store holds (adapter); `render` builds a `rich` table (pure);
the demo shows it live on a terminal and once at the end otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from rich.table import Table

from alerts.delivery import tables as delivery_tables
from alerts.engine import tables as engine_tables
from ingest import schema
from ingest.mirror import cursor_position


@dataclass
class Counts:
    """One patient's figures (or the total)."""

    produced: int = 0
    stored: int = 0
    quarantined: int = 0
    mirrored: int = 0
    alerts: int = 0
    delivered: int = 0
    acknowledged: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class StoreCounts:
    """What the record store holds, per patient, and its webhook deliveries still pending."""

    stored: Mapping[str, int]
    mirrored: Mapping[str, int]
    quarantined: Mapping[str, int]  # by gateway id
    alerts: Mapping[str, int]
    pending_deliveries: int


def poll_store(engine: sa.Engine) -> StoreCounts:
    """Count readings, mirrored readings, quarantine rows, opened alerts, pending deliveries.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the record store could not be read.
    """
    r, q, e = schema.readings.c, schema.quarantine.c, engine_tables.alert_events.c
    d = delivery_tables.webhook_deliveries.c
    mirror_at = cursor_position(engine, "tsdb")
    with engine.connect() as conn:

        def per(col: sa.ColumnElement[str], *where: sa.ColumnElement[bool]) -> dict[str, int]:
            rows = conn.execute(sa.select(col, sa.func.count()).where(*where).group_by(col))
            return {str(k): int(n) for k, n in rows if k is not None}

        stored = per(r.patient_id)
        mirrored = per(r.patient_id, r.id <= mirror_at)
        quarantined = per(q.gateway_id)
        alerts = per(e.patient_id, e.type == "alert.opened")
        pending = conn.execute(
            sa.select(sa.func.count()).where(d.status == delivery_tables.PENDING)
        ).scalar_one()
    return StoreCounts(stored, mirrored, quarantined, alerts, int(pending))


@dataclass(frozen=True)
class Row:
    """A line of the table: who, and their figures."""

    name: str
    counts: Counts


COLUMNS = (  # short headers: the table fits an 80-column terminal
    ("produced", "readings"),
    ("stored", "stored"),
    ("quarantined", "quarant."),
    ("mirrored", "mirrored"),
    ("alerts", "alerts"),
    ("delivered", "webhooks"),
    ("acknowledged", "acked"),
)


def story_day(sim_now: datetime, sim_start: datetime, end: datetime, zone: str) -> tuple[int, int]:
    """(day, of days): calendar days in the patient's zone, the first day of the story is 1."""
    tz = ZoneInfo(zone)
    first = sim_start.astimezone(tz).date()
    day = (sim_now.astimezone(tz).date() - first).days + 1
    return day, max(day, (end.astimezone(tz).date() - first).days + 1)


def headline(
    sim_now: datetime, sim_start: datetime, end: datetime, *, zone: str, speed: float, running: bool
) -> str:
    """``day 3 of 15, Tue 24 Nov 07:00 Asia/Shanghai (10800x)`` (``now, live`` at the end)."""
    day, days = story_day(sim_now, sim_start, end, zone)
    local = sim_now.astimezone(ZoneInfo(zone))
    pace = f"{speed:g}x" if running else "now, live"
    return f"day {day} of {days}, {local:%a %d %b %H:%M} {zone} ({pace})"


def render(title: str, rows: Sequence[Row]) -> Table:
    """The progress table (a total line when there is more than one patient)."""
    table = Table(
        title=title,
        title_justify="left",
        caption="readings produced by the devices, stored, quarantined with a reason, mirrored "
        "to the time series; alerts opened, webhooks verified by the clinic, acknowledged",
        caption_justify="left",
    )
    table.add_column("patient", no_wrap=True, max_width=18, overflow="ellipsis")
    for _, label in COLUMNS:
        table.add_column(label, justify="right")
    shown = list(rows)
    if len(rows) > 1:
        total = Counts()
        for row in rows:
            total = total + row.counts
        shown.append(Row("all", total))
    for row in shown:
        table.add_row(row.name, *(str(getattr(row.counts, key)) for key, _ in COLUMNS))
    return table
