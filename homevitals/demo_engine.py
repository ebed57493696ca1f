"""`python -m homevitals.demo_engine`: the rules engine reviewing back-filled history in time
order, for the demo (a composition root around `alerts.engine.runner.Runner`).

A gateway that pairs a meter full of readings delivers days of history at once, while
`homevitals alerts run` evaluates at the wall clock: a hypoglycaemia five days ago is history
by then, and the per-reading rules rightly leave it alone. The demo wants to show what the
care team would have received had the hub been there all along, so this runs the same engine
(same rules, care plan, episode logic, transaction and delivery outbox) stepping its clock from
the first stored reading to now, one step per reading and per hour, and then exits; the demo
then starts `homevitals alerts run` for what comes next. The cursor and episodes it commits are
the ones the continuous runner continues from.

    python -m homevitals.demo_engine --db URL [--care-plan plan.json] [--step-min 60]

Prints one JSON line per alert event it committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.delivery.outbox import enqueue_events
from alerts.engine import store
from alerts.engine.care_plan import EMPTY, CarePlan, CarePlanError, load_care_plan
from alerts.engine.errors import StoreError
from alerts.engine.patients import Layered
from alerts.engine.record_patients import RecordPatients
from alerts.engine.runner import Runner
from alerts.errors import AlertsError
from ingest import schema

log = logging.getLogger(__name__)


def step_times(measured_at: Sequence[datetime], now: datetime, step: timedelta) -> list[datetime]:
    """The moments to evaluate at: just after each reading, and every `step` from the first
    reading to `now`, in order; always ends with `now`.

    Raises:
        ValueError: `step` is not positive, or a time is naive.
    """
    if step <= timedelta(0):
        raise ValueError("step: must be positive")
    if now.tzinfo is None or any(t.tzinfo is None for t in measured_at):
        raise ValueError("times must be aware UTC datetimes")
    moments = {t + timedelta(seconds=1) for t in measured_at if t < now}
    if measured_at:
        t = min(measured_at)
        while t < now:
            moments.add(t)
            t += step
    return [*sorted(m for m in moments if m < now), now]


def _reading_times(engine: sa.Engine) -> list[datetime]:
    r = schema.readings.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.measured_at)).scalars().all()
    return [t if t.tzinfo else t.replace(tzinfo=UTC) for t in rows]


def catch_up(url: str, plan: CarePlan, step: timedelta, now: datetime) -> int:
    """Evaluate the store's readings at every step time up to `now`, delivering the events.

    Returns the number of events committed.

    Raises:
        AlertsError: the store cannot be migrated or a step failed (nothing of it is kept).
    """
    store.migrate(url)
    migrate_delivery(url)
    engine = store.make_engine(url)
    try:
        patients = plan.patients()
        runner = Runner(
            engine, sink=enqueue_events, overrides=plan.overrides,
            patients_for=lambda conn: Layered(RecordPatients(conn), patients),
        )  # fmt: skip
        committed = 0
        for moment in step_times(_reading_times(engine), now, step):
            try:
                result = runner.step(moment)
            except sa.exc.SQLAlchemyError as exc:
                raise StoreError(f"evaluation at {moment} not committed: {exc}") from exc
            for event in result.events:
                committed += 1
                line = {
                    "at": moment.isoformat(),
                    "type": event.type.value,
                    "rule_id": event.rule_id,
                    "priority": None if event.priority is None else event.priority.value,
                    "alert_id": event.alert_id,
                }
                sys.stdout.write(json.dumps(line) + "\n")
                sys.stdout.flush()
        return committed
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status (0 done, 1 the store failed, 2 bad arguments)."""
    parser = argparse.ArgumentParser(prog="python -m homevitals.demo_engine")
    parser.add_argument("--db", required=True, help="record store URL (SQLAlchemy)")
    parser.add_argument("--care-plan", type=Path, help="JSON {patient: {rule: {param: value}}}")
    parser.add_argument("--step-min", type=float, default=60.0, help="clock step in minutes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = EMPTY
    try:
        plan = load_care_plan(args.care_plan)
    except CarePlanError as exc:
        print(f"--care-plan: {exc}", file=sys.stderr)
        return 2
    if args.step_min <= 0:
        print("--step-min: must be > 0", file=sys.stderr)
        return 2
    try:
        count = catch_up(args.db, plan, timedelta(minutes=args.step_min), datetime.now(UTC))
    except AlertsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("history reviewed: %d alert events committed", count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
