"""``homevitals api run``: serve the care-team API (the composition root of the API process).

Settings come from ``HV_API_*`` (the signing key from ``HV_API_SIGNING_KEY``); ``--db`` names the
record store. uvicorn's own access log is off: it would print paths and query strings, which
carry patient ids; the app logs each request's route template and status instead.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(help="The care-team REST and FHIR API.", no_args_is_help=True)


@app.command("run")
def run(
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar="HV_API_DB_URL",
            help="record store URL (sqlite:///... or postgresql+psycopg://...); prefer "
            "HV_API_DB_URL: a command line is readable by every user in `ps`",
        ),
    ],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Serve the API with uvicorn until interrupted."""
    import uvicorn  # noqa: PLC0415  (imported only when serving)

    from api.app import create_app  # noqa: PLC0415
    from api.errors import ApiConfigError  # noqa: PLC0415
    from api.settings import load_settings  # noqa: PLC0415
    from ingest.errors import StoreError  # noqa: PLC0415
    from ingest.startup import wait_for_database  # noqa: PLC0415
    from ingest.store import make_engine  # noqa: PLC0415

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
        if not wait_for_database(db, "api"):
            raise typer.Exit(code=1)
        engine = make_engine(db)
    except ApiConfigError as exc:
        typer.echo(f"configuration: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except StoreError as exc:
        typer.echo(f"--db: {exc}", err=True)
        raise typer.Exit(code=2) from None
    try:
        uvicorn.run(
            create_app(settings, engine),
            host=host,
            port=port,
            access_log=False,
            log_level=log_level.lower(),
            server_header=False,
        )
    finally:
        engine.dispose()
