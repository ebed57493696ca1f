"""`homevitals webhook ...`: care-team webhook administration, the worker, a local receiver.

The database URL comes from ``--db`` or ``HV_DELIVERY_DATABASE_URL``. Registration applies the
production SSRF rules (https on 443/8443, public addresses only) unless ``--allow-loopback`` is
given for local development; private networks listed in ``HV_DELIVERY_ALLOW_CIDRS`` (or
``--allow-cidrs``) are allowed, and each registration inside one is audited.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, TypeVar

import sqlalchemy as sa
import typer
import uvicorn

from alerts.delivery import __main__ as worker_main
from alerts.delivery import endpoints
from alerts.delivery.ack_app import create_app
from alerts.delivery.confirmation import acknowledge
from alerts.delivery.errors import DeliveryError
from alerts.delivery.migrations import migrate as run_migrations
from alerts.delivery.receiver import create_receiver_app
from alerts.delivery.settings import ConfigError, load_settings, secret_box
from alerts.delivery.special_addresses import NetworkListError, parse_allow_networks
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.status import endpoint_health, requeue_endpoint
from alerts.delivery.tables import webhook_attempts
from careteam import registry
from careteam.errors import CareteamError
from careteam.secrets import SecretBox, new_key_entry
from ingest.errors import StoreError
from ingest.startup import wait_for_database
from ingest.store import make_engine

app = typer.Typer(help="Webhook endpoints of care teams, delivery worker, local receiver.")

T = TypeVar("T")
Db = Annotated[
    str, typer.Option("--db", envvar="HV_DELIVERY_DATABASE_URL", help="SQLAlchemy database URL.")
]
Tier = Annotated[int, typer.Option(help="Escalation tier (0 = paged first).")]


def _now() -> datetime:
    return datetime.now(UTC)


def _run(db: str, action: str, fn: Callable[[sa.Connection], T]) -> T:
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            return fn(conn)
    except (DeliveryError, CareteamError) as exc:
        typer.echo(f"webhook {action}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    finally:
        engine.dispose()


@app.command()
def migrate(db: Db) -> None:
    """Create or upgrade the care-team and delivery tables."""
    run_migrations(db)
    typer.echo("migrated")


@app.command("institution-add")
def institution_add(
    name: str,
    db: Db,
    kind: Annotated[str, typer.Option(help="hospital_clinic, community_health_centre, ...")] = (
        "hospital_clinic"
    ),
) -> None:
    """Record an institution; prints its id."""
    typer.echo(
        _run(db, "institution-add", lambda c: registry.add_institution(c, name, kind, _now()))
    )


@app.command("team-add")
def team_add(institution_id: str, name: str, db: Db) -> None:
    """Record a care team of an institution; prints its id."""
    typer.echo(_run(db, "team-add", lambda c: registry.add_team(c, institution_id, name, _now())))


@app.command("member-add")
def member_add(
    team_id: str,
    display_name: str,
    db: Db,
    role: Annotated[str, typer.Option()] = "nurse",
    tier: Tier = 0,
) -> None:
    """Record a care-team member; prints the member id."""
    member = _run(
        db,
        "member-add",
        lambda c: registry.add_member(c, team_id, display_name, role=role, tier=tier, at=_now()),
    )
    typer.echo(member)


@app.command()
def assign(team_id: str, patient_id: str, db: Db, tier: Tier = 0) -> None:
    """Make a team follow a patient."""
    _run(db, "assign", lambda c: registry.assign_patient(c, team_id, patient_id, _now(), tier=tier))
    typer.echo("assigned")


@app.command()
def register(
    team_id: str,
    url: str,
    event: Annotated[list[str], typer.Option("--event", help="Event type; repeat for several.")],
    db: Db,
    *,
    tier: Tier = 0,
    allow_loopback: Annotated[
        bool, typer.Option(help="Development only: accept loopback http receivers.")
    ] = False,
    allow_cidrs: Annotated[
        str,
        typer.Option(
            envvar="HV_DELIVERY_ALLOW_CIDRS",
            help="Private networks whose receivers are allowed (comma-separated CIDRs inside "
            "10/8, 172.16/12, 192.168/16, fc00::/7); each use is audited.",
        ),
    ] = "",
) -> None:
    """Register a webhook endpoint; prints its id and its signing secret (shown once)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        networks = parse_allow_networks(allow_cidrs.split(","))
    except NetworkListError as exc:
        typer.echo(f"webhook register: HV_DELIVERY_ALLOW_CIDRS: {exc}", err=True)
        raise typer.Exit(code=2) from None
    policy = SsrfPolicy(allow_loopback=allow_loopback, allow_networks=networks)
    got = _run(
        db,
        "register",
        lambda c: endpoints.register_endpoint(
            c, team_id, url, event, at=_now(), policy=policy, tier=tier, box=_box("register")
        ),
    )
    typer.echo(json.dumps({"endpoint_id": got.endpoint_id, "secret": got.secret}))


@app.command("rotate-secret")
def rotate_secret(
    endpoint_id: str,
    db: Db,
    overlap_hours: Annotated[float, typer.Option(help="How long the old secret signs on.")] = 24.0,
) -> None:
    """Add a new signing secret; prints it. The old one keeps signing during the overlap."""
    overlap = timedelta(hours=overlap_hours)
    box = _box("rotate-secret")
    secret = _run(
        db,
        "rotate-secret",
        lambda c: endpoints.rotate_secret(c, endpoint_id, _now(), overlap, box=box),
    )
    typer.echo(secret)


@app.command("seal-secrets")
def seal_secrets(db: Db) -> None:
    """Seal signing secrets stored in clear (older databases) and move those sealed under an
    older key to the first key of HV_SECRETS_KEYS; prints how many changed."""
    box = _box("seal-secrets")
    typer.echo(_run(db, "seal-secrets", lambda c: endpoints.seal_stored_secrets(c, box)))


@app.command("new-secrets-key")
def new_secrets_key(
    key_id: Annotated[str, typer.Option(help="A short name for the key (for rotation).")] = "k1",
) -> None:
    """Print a new entry for HV_SECRETS_KEYS (prepend it to rotate; keep the old ones)."""
    typer.echo(new_key_entry(key_id))


def _box(action: str) -> SecretBox:
    """The sealing keys from HV_SECRETS_KEYS (never from the command line: argv is public)."""
    try:
        return secret_box(os.environ.get("HV_SECRETS_KEYS"))
    except ConfigError as exc:
        typer.echo(f"webhook {action}: {exc}", err=True)
        raise typer.Exit(code=2) from None


@app.command()
def enable(endpoint_id: str, db: Db) -> None:
    """Re-enable an endpoint and resend what failed while it was disabled; prints the count."""
    count = _run(db, "enable", lambda c: requeue_endpoint(c, endpoint_id, _now()))
    typer.echo(f"enabled; {count} deliveries requeued")


@app.command()
def health(team_id: str, db: Db) -> None:
    """Print the delivery health of a team's endpoints (JSON lines)."""
    for row in _run(db, "health", lambda c: endpoint_health(c, team_id)):
        typer.echo(json.dumps(dataclasses.asdict(row), default=str))


@app.command()
def attempts(endpoint_id: str, db: Db, limit: Annotated[int, typer.Option(min=1)] = 20) -> None:
    """Print the latest delivery attempts of an endpoint (JSON lines, newest first)."""
    t = webhook_attempts.c

    def read(conn: sa.Connection) -> list[dict[str, object]]:
        stmt = sa.select(webhook_attempts).where(t.endpoint_id == endpoint_id)
        rows = conn.execute(stmt.order_by(t.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    for row in _run(db, "attempts", read):
        typer.echo(json.dumps(row, default=str))


@app.command()
def receive(
    secret: Annotated[
        list[str],
        typer.Option(
            "--secret",
            envvar="HV_WEBHOOK_SECRETS",
            help="whsec_ secret; repeat to rotate. Prefer HV_WEBHOOK_SECRETS (space-separated): "
            "a command-line secret is visible to every user in `ps`.",
        ),
    ],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8787,
) -> None:
    """Run a local receiver that verifies signatures and prints each event as a JSON line."""

    def show(webhook_id: str, event: object) -> None:
        typer.echo(json.dumps({"webhook_id": webhook_id, "event": event}, sort_keys=True))

    application = create_receiver_app(secret, show)
    typer.echo(f"listening on http://{host}:{port}/", err=True)
    uvicorn.run(application, host=host, port=port, log_level="warning", lifespan="off")


@app.command("acknowledge")
def acknowledge_alert(alert_id: str, member_id: str, db: Db) -> None:
    """Acknowledge an alert on behalf of a care-team member (stops its escalation)."""
    first = _run(db, "acknowledge", lambda c: acknowledge(c, alert_id, member_id, _now()))
    typer.echo("acknowledged" if first else "already acknowledged")


@app.command()
def worker() -> None:
    """Run the delivery and escalation worker (settings: HV_DELIVERY_* environment)."""
    worker_main.main()


@app.command("ack-serve")
def ack_serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8788,
) -> None:
    """Serve the acknowledgement callback app (settings: HV_DELIVERY_*, ACK_KEY required)."""
    logging.basicConfig(level=logging.INFO)
    try:
        settings = load_settings()
    except ConfigError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if settings.ack_key is None:
        typer.echo("configuration error: HV_DELIVERY_ACK_KEY: is required", err=True)
        raise typer.Exit(code=2)
    url = settings.database_url.get_secret_value()
    try:
        wait_for_database(url, "ack server")
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    engine = make_engine(url)
    application = create_app(engine, settings.ack_key.get_secret_value().encode(), _now)
    uvicorn.run(application, host=host, port=port, log_level="warning")
