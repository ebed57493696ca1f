"""`homevitals ingest ...` and `python -m ingest ...`: the ingest composition root.

Settings come from the environment (``HV_INGEST_*``, see `ingest.settings.Settings`); the
command fails at start-up naming the setting to fix.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from types import FrameType

import typer

from ingest.errors import IngestError
from ingest.service import configure_logging, run_service
from ingest.settings import Settings, load_settings
from ingest.startup import wait_for_database
from ingest.store import migrate as migrate_store

app = typer.Typer(help="MQTT to the record store and the time-series mirror.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except IngestError as exc:
        typer.echo(f"ingest: configuration error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _worker(settings: Settings, index: int, log_level: str, mirror: bool) -> None:
    configure_logging(log_level)
    worker = settings.model_copy(update={"client_id": f"{settings.client_id}-{index}"})
    run_service(worker, mirror=mirror)


@app.command()
def run(
    workers: int = typer.Option(1, min=1, max=64, help="Consumer processes (shared subscription)."),
    no_mirror: bool = typer.Option(False, "--no-mirror", help="Do not run the mirror here."),
    log_level: str = typer.Option("INFO", help="Logging level."),
) -> None:
    """Consume readings from MQTT, store them, receipt them, mirror them (until SIGTERM)."""
    settings = _settings()
    configure_logging(log_level)
    try:
        if workers == 1:
            run_service(settings, mirror=not no_mirror)
            return
        wait_for_database(settings.db_url.get_secret_value(), "ingest")
        if settings.migrate_on_start:
            migrate_store(settings.db_url.get_secret_value())
        per_worker = settings.model_copy(update={"migrate_on_start": False})
        ctx = multiprocessing.get_context("spawn")
        # One mirror is enough (and on SQLite two could write a batch twice): worker 0 runs it.
        procs = [
            ctx.Process(
                target=_worker,
                args=(per_worker, i, log_level, i == 0 and not no_mirror),
                name=f"ingest-{i}",
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()

        def _forward(signum: int, _frame: FrameType | None) -> None:
            for proc in procs:
                if proc.pid is not None and proc.is_alive():
                    os.kill(proc.pid, signum)

        signal.signal(signal.SIGTERM, _forward)
        signal.signal(signal.SIGINT, _forward)
        for proc in procs:
            proc.join()
    except IngestError as exc:
        typer.echo(f"ingest: {exc}", err=True)
        raise typer.Exit(code=1) from None


@app.command()
def migrate() -> None:
    """Create or upgrade the ingest tables in the record store."""
    settings = _settings()
    try:
        migrate_store(settings.db_url.get_secret_value())
    except IngestError as exc:
        typer.echo(f"ingest: {exc}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo("ingest: record store is at the newest revision")


@app.command()
def mirror(log_level: str = typer.Option("INFO", help="Logging level.")) -> None:
    """Run only the time-series mirror (until SIGTERM)."""
    settings = _settings()
    if settings.tsdb_url is None:
        typer.echo("ingest: HV_INGEST_TSDB_URL: is required for the mirror", err=True)
        raise typer.Exit(code=2)
    configure_logging(log_level)
    run_service(settings, mirror=True, consume=False)
