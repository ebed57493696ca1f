"""``homevitals token issue``: print one bearer JWT (development and tests).

Real deployments take tokens from their identity provider; this command signs with the same
``HV_API_SIGNING_KEY`` the API verifies with, after checking in the record that the member (an
active one) or the patient exists.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Bearer tokens for the API.", no_args_is_help=True)


@app.command("issue")
def issue(  # noqa: PLR0917 (typer options)
    db: Annotated[str, typer.Option("--db", help="record store URL")],
    scope: Annotated[
        str,
        typer.Option("--scope", help='SMART scopes, e.g. "user/Observation.read user/Flag.read"'),
    ],
    member: Annotated[str | None, typer.Option("--member", help="a care-team member id")] = None,
    patient: Annotated[str | None, typer.Option("--patient", help="a patient id")] = None,
    system: Annotated[str | None, typer.Option("--system", help="a backend client id")] = None,
    ttl: Annotated[int, typer.Option("--ttl", min=1, help="lifetime in seconds")] = 3600,
) -> None:
    """Print one bearer token on stdout for a member, a patient or a backend client."""
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from api import subjects, tokens  # noqa: PLC0415
    from api.errors import ApiConfigError, ApiError  # noqa: PLC0415
    from api.settings import load_settings  # noqa: PLC0415
    from ingest.errors import StoreError  # noqa: PLC0415
    from ingest.store import make_engine  # noqa: PLC0415

    chosen = [
        (a, v) for a, v in (("member", member), ("patient", patient), ("system", system)) if v
    ]
    if len(chosen) != 1:
        typer.echo("give exactly one of --member, --patient or --system", err=True)
        raise typer.Exit(code=2)
    actor, subject = tokens.Actor(chosen[0][0]), str(chosen[0][1])
    try:
        settings = load_settings()
        engine = make_engine(db)
    except (ApiConfigError, StoreError) as exc:
        typer.echo(f"configuration: {exc}", err=True)
        raise typer.Exit(code=2) from None
    try:
        with engine.connect() as conn:
            subjects.check_subject(conn, actor, subject)
        token = tokens.issue(
            settings.token_key(),
            actor,
            subject,
            scope,
            now=datetime.now(UTC),
            ttl=timedelta(seconds=ttl),
        )
    except ApiError as exc:
        typer.echo(f"refused: {exc.reason}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
    typer.echo(token)
