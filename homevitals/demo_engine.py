"""`python -m homevitals.demo_engine`: the rules engine on the demo's accelerated clock (a
composition root around `alerts.engine.runner.Runner`).

While the story plays, simulated time runs thousands of times faster than the wall clock
(`homevitals.demo_clock`), and `homevitals alerts run` evaluates at the wall clock: a
hypoglycaemia on the patient's third day home would be days old to it. This runs the same
engine (same rules, care plan, episode logic, transaction and delivery outbox) stepping at the
simulated time instead, every `--interval-s`, until simulated time has caught up with the wall
clock; then it exits, and the demo starts `homevitals alerts run` for what comes next, from the
cursor and episodes this one committed.

    python -m homevitals.demo_engine --sim-start ISO --started-at ISO --speed S
                                     [--db URL] [--care-plan plan.json] [--interval-s 0.25]

The record store is `--db` or, better (a command line is visible in `ps`), HV_ALERTS_DB_URL.

Prints one JSON line per alert event it committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import sqlalchemy as sa

from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.delivery.outbox import enqueue_events
from alerts.engine import store
from alerts.engine.care_plan import CarePlan, CarePlanError, load_care_plan
from alerts.engine.errors import StoreError
from alerts.engine.patients import Layered
from alerts.engine.record_patients import RecordPatients
from alerts.engine.runner import Runner
from alerts.errors import AlertsError
from homevitals.demo_clock import DemoClock

log = logging.getLogger(__name__)


def follow(
    url: str,
    plan: CarePlan,
    clock: DemoClock,
    *,
    interval_s: float,
    wall: Callable[[], datetime],
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Step the engine at `clock`'s simulated time until it has caught up with `wall`.

    Returns the number of events committed.

    Raises:
        AlertsError: the store cannot be migrated or a step failed (nothing of it is kept).
    """
    store.migrate(url)
    migrate_delivery(url)
    engine = store.make_engine(url)
    try:
        patients = plan.patients()  # the record's time zones and conditions, then the plan's
        runner = Runner(
            engine, sink=enqueue_events, overrides=plan.overrides,
            patients_for=lambda conn: Layered(RecordPatients(conn), patients),
        )  # fmt: skip
        committed = 0
        while True:
            now_wall = wall()
            moment = clock.at(now_wall)
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
            if moment >= now_wall:
                return committed
            sleep(interval_s)
    finally:
        engine.dispose()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status (0 done, 1 the store failed, 2 bad arguments)."""
    parser = argparse.ArgumentParser(prog="python -m homevitals.demo_engine")
    parser.add_argument(
        "--db",
        default=os.environ.get("HV_ALERTS_DB_URL"),
        help="record store URL (SQLAlchemy); default HV_ALERTS_DB_URL",
    )
    parser.add_argument("--care-plan", type=Path, help="JSON {patient: {rule: {param: value}}}")
    parser.add_argument("--sim-start", required=True, help="simulated start (ISO 8601, UTC)")
    parser.add_argument("--started-at", required=True, help="wall time the clock started (ISO)")
    parser.add_argument("--speed", type=float, required=True, help="simulated s per wall s")
    parser.add_argument("--interval-s", type=float, default=0.25, help="wall s between steps")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        if not args.db:
            raise ValueError("--db or HV_ALERTS_DB_URL: the record store is required")
        plan = load_care_plan(args.care_plan)
        clock = DemoClock(
            datetime.fromisoformat(args.sim_start),
            args.speed,
            datetime.fromisoformat(args.started_at),
        )
        if args.interval_s <= 0:
            raise ValueError("--interval-s: must be > 0")
    except (CarePlanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _stop)
    try:
        count = follow(
            args.db, plan, clock, interval_s=args.interval_s, wall=lambda: datetime.now(UTC)
        )
    except AlertsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    log.info("caught up with the wall clock: %d alert events committed", count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
