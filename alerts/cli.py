"""`homevitals alerts ...`: run the rules engine, or evaluate rules over history or a file.

- `homevitals alerts evaluate --input readings.csv --now 2026-03-01T08:00:00Z --format json`
  prints one JSON object per alert open at `now` (offline, no database).
- `homevitals alerts evaluate --db URL --since 2026-01-01T00:00:00Z` replays the record store's
  readings since then and prints every episode that would have opened (nothing is written).
- `homevitals alerts run --db URL` evaluates continuously from the record store's cursor.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from alerts.delivery.migrations import migrate as migrate_delivery
from alerts.delivery.outbox import enqueue_events
from alerts.engine.batch import replay_store
from alerts.engine.care_plan import CarePlan, CarePlanError, load_care_plan
from alerts.engine.csv_source import read_csv
from alerts.engine.episodes import DEFAULT_UPDATE_INTERVAL_S
from alerts.engine.errors import EngineError, ReadingInputError
from alerts.engine.offline import open_alerts_at
from alerts.engine.runner import run_forever
from alerts.engine.store import make_engine as store_make_engine
from alerts.engine.store import migrate as store_migrate
from alerts.freshness.core import FreshnessParams
from alerts.freshness.runner import run as run_freshness
from alerts.rules.errors import RulesError
from ingest.errors import StoreError as IngestStoreError
from ingest.startup import wait_for_database
from ingest.store import migrate as ingest_migrate

CARE_PLAN_HELP = (
    'JSON {patient_id: {"timezone": IANA name, "conditions": [codes], rule_id: {param: value}}}.'
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Rules engine and alerts.")


@app.callback()
def _group() -> None:
    """Rules engine and alerts."""


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint=option) from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs a UTC offset (e.g. Z)", param_hint=option)
    return moment.astimezone(UTC)


def _care_plan(path: Path | None) -> CarePlan:
    try:
        return load_care_plan(path)
    except CarePlanError as exc:
        typer.echo(f"--care-plan: {exc}", err=True)
        raise typer.Exit(code=2) from exc


@app.command()
def evaluate(  # noqa: PLR0917 (typer options)
    input_csv: Annotated[Path | None, typer.Option("--input", help="Readings CSV file.")] = None,
    now: Annotated[str | None, typer.Option(help="Evaluation time (ISO 8601, UTC).")] = None,
    since: Annotated[str | None, typer.Option(help="Replay the store since (ISO 8601).")] = None,
    db: Annotated[
        str | None,
        typer.Option(envvar="HV_ALERTS_DB_URL", help="Record store URL (or HV_ALERTS_DB_URL)."),
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="json (JSON lines).")] = "json",
    step_min: Annotated[float, typer.Option(help="Replay step in minutes.")] = 60.0,
    care_plan: Annotated[Path | None, typer.Option(help=CARE_PLAN_HELP)] = None,
) -> None:
    """Report the alerts open at --now for a CSV file, or replay the store since --since."""
    if output_format != "json":
        raise typer.BadParameter("only json is supported", param_hint="--format")
    plan = _care_plan(care_plan)
    try:
        if input_csv is not None:
            at = _moment(now, "--now") if now else datetime.now(UTC)
            cols = read_csv(input_csv)
            rows = open_alerts_at(
                cols, int(at.timestamp()), overrides=plan.overrides, profiles=plan.profiles
            )
        elif since is not None and db is not None:
            start = _moment(since, "--since")
            end = _moment(now, "--now") if now else datetime.now(UTC)
            rows = replay_store(
                db, start, end, step_s=int(step_min * 60), overrides=plan.overrides,
                profiles=plan.profiles,
            )  # fmt: skip
        else:
            raise typer.BadParameter("give --input FILE, or --db URL with --since TIME")
    except ReadingInputError as exc:
        typer.echo(f"{input_csv}: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    except (EngineError, RulesError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    for row in rows:
        sys.stdout.write(json.dumps(row, sort_keys=True) + "\n")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds run_forever: the leases of a scale-out worker are released


@app.command()
def run(  # noqa: PLR0917 (typer options)
    db: Annotated[
        str,
        typer.Option(
            envvar="HV_ALERTS_DB_URL",
            help="Record store URL (SQLAlchemy); prefer HV_ALERTS_DB_URL: a command line is "
            "readable by every user in `ps`, and the URL holds the database password.",
        ),
    ],
    interval_s: Annotated[
        float, typer.Option(help="Fallback poll (PostgreSQL), seconds between polls (SQLite).")
    ] = 5.0,
    once: Annotated[bool, typer.Option(help="Evaluate once and exit.")] = False,
    deliver: Annotated[
        bool, typer.Option(help="Hand events to webhook delivery's outbox (same transaction).")
    ] = True,
    care_plan: Annotated[Path | None, typer.Option(help=CARE_PLAN_HELP)] = None,
    scale_out: Annotated[
        bool,
        typer.Option(
            help="One of several workers sharing the patients through leases (PostgreSQL)."
        ),
    ] = False,
    lease_s: Annotated[float, typer.Option(help="Lease period with --scale-out.")] = 10.0,
    update_interval_min: Annotated[
        float,
        typer.Option(help="Push at most one 'worsened' alert.updated per alert this often."),
    ] = DEFAULT_UPDATE_INTERVAL_S / 60,
) -> None:
    """Evaluate continuously from the record store's cursor (Ctrl-C or SIGTERM to stop).

    On PostgreSQL the engine is woken by each committed batch of readings (LISTEN/NOTIFY) and
    --interval-s is only its fallback poll; on SQLite it polls every --interval-s. Every
    revision is kept in the record (`alert_history`); events are pushed (kept in
    `alert_events` and, with --deliver, written to webhook delivery's outbox in the same
    transaction) when an alert opens, resolves, rises in priority, or materially worsens (at
    most once per --update-interval-min). With --scale-out, run as many workers as wanted:
    each patient is evaluated by exactly one of them, and a worker that dies has its patients
    taken over once its leases (--lease-s) expire.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = _care_plan(care_plan)
    if update_interval_min < 0:
        raise typer.BadParameter("must be >= 0", param_hint="--update-interval-min")
    signal.signal(signal.SIGTERM, _stop)
    # Ctrl-C stops it even when it was started with SIGINT ignored (a background job of a
    # script: the shell ignores SIGINT for it, and Python keeps an inherited SIG_IGN).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        wait_for_database(db, "alerts engine")
        if deliver:
            migrate_delivery(db)
        sink = enqueue_events if deliver else None
        # The composition root picks where time zones and conditions come from (the patient
        # record, with the care plan's values as explicit overrides: `run_forever`).
        run_forever(
            db, interval_s=interval_s, once=once, overrides=plan.overrides, sink=sink,
            scale_out=scale_out, lease_s=lease_s, patients=plan.patients(),
            update_interval_s=int(update_interval_min * 60),
        )  # fmt: skip
    except (EngineError, IngestStoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


@app.command()
def freshness(  # noqa: PLR0917 (typer options)
    db: Annotated[str, typer.Option(help="Record store URL (SQLAlchemy).")],
    interval_s: Annotated[float, typer.Option(help="Seconds between checks.")] = 30.0,
    deliver: Annotated[
        bool, typer.Option(help="Hand findings to webhook delivery's outbox (same transaction).")
    ] = True,
    hub_offline_grace_s: Annotated[
        float, typer.Option(help="Offline this long: a finding.")
    ] = 600.0,
    heartbeat_timeout_s: Annotated[float, typer.Option(help="No heartbeat this long.")] = 1800.0,
    device_contact_s: Annotated[
        float, typer.Option(help="A device not reached by its hub this long is silent.")
    ] = 26 * 3600.0,
    pipeline_max_lag_s: Annotated[
        float, typer.Option(help="A reading waiting for the engine this long.")
    ] = 300.0,
    clock_skew_max_s: Annotated[
        float, typer.Option(help="A hub clock off by more than this (either way).")
    ] = 300.0,
) -> None:
    """Technical findings when data stops arriving or cannot be trusted: hub offline, hub
    storage full, hub clock skewed, device silent, pipeline behind (its own process, apart from
    the engine it watches; SIGTERM to stop)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = FreshnessParams(
        hub_offline_grace_s=hub_offline_grace_s,
        heartbeat_timeout_s=heartbeat_timeout_s,
        pipeline_max_lag_s=pipeline_max_lag_s,
        clock_skew_max_s=clock_skew_max_s,
        default_contact_s=device_contact_s,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if not wait_for_database(db, "alerts freshness", stop=stop):
            return
        ingest_migrate(db)  # the hub facts it reads
        store_migrate(db)
        if deliver:
            migrate_delivery(db)
    except (EngineError, IngestStoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    engine = store_make_engine(db)
    try:
        run_freshness(
            engine,
            params,
            stop,
            interval_s=interval_s,
            clock=lambda: datetime.now(UTC),
            sink=enqueue_events if deliver else None,
        )
    finally:
        engine.dispose()
