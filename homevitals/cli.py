"""The `homevitals` console script.

Each package owns its sub-commands in its own `cli.py` (a `typer.Typer` named `app`); this root
only mounts them. Imports are lazy per sub-command group so that `homevitals sim ...` does not
import FastAPI and `homevitals alerts ...` does not import Bumble.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated

import typer

# (command group, module that defines `app` (or module:attribute), help).
GROUPS: tuple[tuple[str, str, str], ...] = (
    ("patient", "careteam.cli:patient_app", "Patients: register, list, hub enrolment codes."),
    ("consent", "homevitals.consent_cli:app", "Consent grants: grant, withdraw, list."),
    ("audit", "careteam.cli:audit_app", "Audit trail: verify, anchor, show a patient's view."),
    ("enrolment", "careteam.enrol_cli:app", "Hub enrolment: serve the endpoint, list, revoke."),
    ("ingest", "ingest.cli", "MQTT to the record store, receipts, time-series mirror."),
    ("alerts", "alerts.cli", "Rules engine: run it, or evaluate rules over history or a file."),
    ("webhook", "alerts.delivery.cli", "Care-team webhooks: register, deliver, receive."),
    ("sim", "firmware_sims.cli", "Simulated meters and cuffs on a virtual radio: list, run."),
    ("gateway", "gateway.cli", "The home hub: pair devices, list them, run the gateway."),
    ("api", "api.cli", "The care-team REST and FHIR API: run it."),
    ("token", "api.token_cli", "Bearer tokens for the API (development and tests): issue one."),
)

app = typer.Typer(
    name="homevitals",
    help="Continuous home monitoring of chronic disease: devices, gateway, ingest, alerts.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def demo(  # noqa: PLR0917 (typer options)
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            help="a shipped scenario (homevitals sim list) or a TOML path, one home each; "
            "repeat for more (default: the story's two patients)"
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            min=2.0,
            help="simulated seconds per real second while the story plays (default 10800: a "
            "day in 8 s, two weeks in about two minutes)",
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="keep everything here (the record store: DIR/homevitals.db)"),
    ] = None,
    db: Annotated[
        str | None, typer.Option(help="record store URL (default: SQLite in the demo directory)")
    ] = None,
    timeout_s: Annotated[
        float, typer.Option(help="after the story has reached today, give up after this long")
    ] = 120.0,
    keep_running: Annotated[
        bool,
        typer.Option(
            "--keep-running",
            help="afterwards, keep everything up and print the dashboard's address and "
            "development sign-in (Ctrl-C ends)",
        ),
    ] = False,
    check_only: Annotated[
        bool,
        typer.Option(
            "--check-only", help="judge a finished run in --dir again (its self-check only)"
        ),
    ] = False,
) -> None:
    """Run the whole system locally with simulated devices: two patients' first two weeks at
    home, told as it happens, then a self-check (exit 0 when it passes, 1 when it fails, 2 when
    a part could not start)."""
    # Lazy, like the groups: the demo imports every package.
    import asyncio  # noqa: PLC0415

    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from alerts.errors import AlertsError  # noqa: PLC0415
    from careteam.errors import CareteamError  # noqa: PLC0415
    from firmware_sims.errors import FirmwareSimsError  # noqa: PLC0415
    from homevitals import demo as demo_module  # noqa: PLC0415
    from homevitals.demo_errors import DemoError  # noqa: PLC0415
    from ingest.errors import IngestError  # noqa: PLC0415

    failures = (DemoError, FirmwareSimsError, AlertsError, CareteamError, IngestError,
                SQLAlchemyError)  # fmt: skip
    if check_only:
        if directory is None:
            typer.echo("--check-only needs --dir DIR (a kept demo directory)", err=True)
            raise typer.Exit(code=2)
        try:
            result = demo_module.check_only(directory, db)
        except failures as exc:
            typer.echo(f"check failed to run: {exc}", err=True)
            raise typer.Exit(code=2) from exc
        for line in result.lines():
            typer.echo(line)
        typer.echo("result: PASS" if result.ok else "result: FAIL, " + "; ".join(result.failures()))
        raise typer.Exit(code=0 if result.ok else 1)
    options = demo_module.DemoOptions(
        scenarios=tuple(scenario) if scenario else demo_module.STORY_SCENARIOS,
        directory=directory,
        db_url=db,
        speed=speed or demo_module.DEFAULT_SPEED,
        timeout_s=timeout_s,
        keep_running=keep_running,
        progress=True,
    )
    run = demo_module.Demo(options)
    try:
        asyncio.run(run.run())
    except KeyboardInterrupt:
        if run.report.check is None:
            typer.echo("interrupted: every process stopped", err=True)
            raise typer.Exit(code=130) from None
        typer.echo("stopped: every process ended")
    except failures as exc:
        typer.echo(f"demo failed: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    raise typer.Exit(code=0 if run.report.ok else 1)


@app.command()
def migrate(
    db: Annotated[
        str,
        typer.Option(
            envvar="HV_MIGRATE_DB_URL",
            help="Record store URL; prefer HV_MIGRATE_DB_URL (a command line is visible in ps).",
        ),
    ],
) -> None:
    """Create or upgrade every package's tables in the record store (idempotent).

    The deployment's migration step runs this once before the services start; each package
    keeps its own Alembic chain and version table.
    """
    from sqlalchemy.exc import SQLAlchemyError  # noqa: PLC0415

    from alerts.delivery.migrations import migrate as migrate_delivery  # noqa: PLC0415
    from alerts.engine.store import migrate as migrate_engine  # noqa: PLC0415
    from alerts.errors import AlertsError  # noqa: PLC0415
    from careteam.errors import CareteamError  # noqa: PLC0415
    from careteam.migrations import migrate as migrate_careteam  # noqa: PLC0415
    from ingest.errors import IngestError  # noqa: PLC0415
    from ingest.store import migrate as migrate_ingest  # noqa: PLC0415

    for name, step in (
        ("careteam", migrate_careteam),
        ("ingest", migrate_ingest),
        ("alerts", migrate_engine),
        ("delivery", migrate_delivery),
    ):
        try:
            step(db)
        except (CareteamError, IngestError, AlertsError, SQLAlchemyError) as exc:
            typer.echo(f"migrate: {name}: {type(exc).__name__}: {exc}"[:2000], err=True)
            raise typer.Exit(code=1) from None
        typer.echo(f"{name}: migrated")
    if _audit_append_only(db):
        typer.echo("audit_log: append-only for the service roles")


# The deployment's service roles (deploy/postgres/10-homevitals-roles.sh) get row rights on
# every table by default; the audit trail's rows must never change, so those two are taken
# back on its table after every migration (a no-op where the roles do not exist).
_AUDIT_APPEND_ONLY = """
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hv_services') THEN
    REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM hv_services;
  END IF;
END $$
"""


def _audit_append_only(url: str) -> bool:
    import sqlalchemy as sa  # noqa: PLC0415

    from ingest.store import make_engine  # noqa: PLC0415

    engine = make_engine(url)
    try:
        if engine.dialect.name != "postgresql":
            return False
        with engine.begin() as conn:
            conn.execute(sa.text(_AUDIT_APPEND_ONLY))
            return bool(
                conn.execute(
                    sa.text("SELECT 1 FROM pg_roles WHERE rolname = 'hv_services'")
                ).first()
            )
    finally:
        engine.dispose()


def _mount_groups(argv: list[str]) -> None:
    wanted = argv[1] if len(argv) > 1 else None
    for name, module, help_text in GROUPS:
        # Import only the group asked for (all of them for --help).
        if wanted in (None, "--help", "-h", name):
            path, _, attribute = module.partition(":")
            sub = getattr(importlib.import_module(path), attribute or "app")
            app.add_typer(sub, name=name, help=help_text)
        else:
            app.add_typer(typer.Typer(help=help_text), name=name)


def main() -> None:
    """Entry point of the `homevitals` console script."""
    _mount_groups(sys.argv)
    app()
