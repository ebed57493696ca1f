"""`homevitals enrolment ...`: serve the hub enrolment endpoint, list and revoke hubs, and
list the devices hubs reported pairing.

The broker accounts of enrolled hubs live in Mosquitto's password file (``--passwd-file`` or
``HV_CARETEAM_BROKER_PASSWD_FILE``); the broker is told to reload through its process id
(``--broker-pid-file`` or ``HV_CARETEAM_BROKER_PID_FILE``). Certificate-only deployments give
neither, and hubs enrol with their certificate's name (`enrolment_store.enrol_gateway`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from careteam import device_store, enrolment_store
from careteam.broker import MosquittoPasswordFile, sighup_pid_file
from careteam.cli import By, Db, actor, now, run
from careteam.db import make_engine
from careteam.enrol_app import create_app
from careteam.errors import InvalidFieldError
from careteam.forwarded import parse_trusted_proxies
from careteam.tables import gateways

app = typer.Typer(
    help="Hub enrolment: the endpoint hubs redeem codes at; hubs.", no_args_is_help=True
)

PasswdFile = Annotated[
    Path | None,
    typer.Option(
        "--passwd-file",
        envvar="HV_CARETEAM_BROKER_PASSWD_FILE",
        help="Mosquitto password_file the hubs' accounts go in.",
    ),
]
PidFile = Annotated[
    Path | None,
    typer.Option(
        "--broker-pid-file",
        envvar="HV_CARETEAM_BROKER_PID_FILE",
        help="File holding the broker's process id (SIGHUP reloads it).",
    ),
]


def _accounts(passwd_file: Path | None, pid_file: Path | None) -> MosquittoPasswordFile:
    if passwd_file is None or pid_file is None:
        typer.echo("enrolment: give --passwd-file and --broker-pid-file", err=True)
        raise typer.Exit(code=2)
    return MosquittoPasswordFile(passwd_file, sighup_pid_file(pid_file))


@app.command()
def serve(
    db: Db,
    *,
    passwd_file: PasswdFile = None,
    broker_pid_file: PidFile = None,
    host: Annotated[str, typer.Option(help="Listen address (put TLS in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8082,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            envvar="HV_CARETEAM_TRUSTED_PROXIES",
            help="Reverse proxy address or CIDR block whose X-Forwarded-For names the client "
            "(repeat; the variable takes several, space-separated). Default: none.",
        ),
    ] = None,
) -> None:
    """Serve POST /v1/enrol, where hubs redeem their codes."""
    try:
        proxies = parse_trusted_proxies(trusted_proxy or ())
    except InvalidFieldError as exc:
        typer.echo(f"enrolment serve: {exc}", err=True)
        raise typer.Exit(code=2) from None
    accounts = _accounts(passwd_file, broker_pid_file)
    engine = make_engine(db)
    try:
        uvicorn.run(
            create_app(engine, accounts, now, trusted_proxies=proxies),
            host=host,
            port=port,
            log_level="info",
            proxy_headers=False,  # the source is decided by careteam.forwarded, nowhere else
        )
    finally:
        engine.dispose()


@app.command("list")
def list_hubs(db: Db) -> None:
    """Enrolled hubs: gateway id, enrolled at, revoked at, patients."""

    def _rows(conn: object) -> list[str]:
        import sqlalchemy as sa  # noqa: PLC0415

        assert isinstance(conn, sa.Connection)
        out = []
        for row in conn.execute(sa.select(gateways).order_by(gateways.c.enrolled_at)):
            patients = [p.patient_id for p in enrolment_store.hub_patients(conn, row.gateway_id)]
            revoked = row.revoked_at.isoformat() if row.revoked_at else "-"
            out.append(
                f"{row.gateway_id}\t{row.enrolled_at.isoformat()}\t{revoked}\t{' '.join(patients)}"
            )
        return out

    for line in run(db, "enrolment list", _rows):
        typer.echo(line)


@app.command()
def devices(
    db: Db,
    patient: Annotated[str | None, typer.Option(help="Only this patient's devices.")] = None,
    gateway: Annotated[str | None, typer.Option(help="Only this hub's devices.")] = None,
) -> None:
    """Devices hubs reported: hub, device id, kind, model and serial, patients (with cuff
    user), paired at, unpaired at (hub times)."""
    if (patient is None) == (gateway is None):
        typer.echo("enrolment devices: give --patient or --gateway", err=True)
        raise typer.Exit(code=2)

    def _rows(conn: object) -> list[str]:
        import sqlalchemy as sa  # noqa: PLC0415

        assert isinstance(conn, sa.Connection)
        found = (
            device_store.devices_of_patient(conn, patient)
            if patient is not None
            else device_store.devices_of_gateway(conn, str(gateway))
        )
        out = []
        for d in found:
            users = " ".join(p if u is None else f"{p}(user {u})" for p, u in d.patients)
            unpaired = d.unpaired_at.isoformat() if d.unpaired_at else "-"
            out.append(
                f"{d.gateway_id}\t{d.device_id}\t{d.kind}\t{d.model or '-'} {d.serial or '-'}"
                f"\t{users}\t{d.paired_at.isoformat()}\t{unpaired}"
            )
        return out

    for line in run(db, "enrolment devices", _rows):
        typer.echo(line)


@app.command()
def revoke(
    gateway_id: str,
    db: Db,
    passwd_file: PasswdFile = None,
    broker_pid_file: PidFile = None,
    by: By = None,
) -> None:
    """Unenrol a hub: its readings are quarantined from now on, its broker account removed."""
    accounts = (
        _accounts(passwd_file, broker_pid_file)
        if passwd_file is not None or broker_pid_file is not None
        else None
    )
    run(
        db,
        "enrolment revoke",
        lambda c: enrolment_store.revoke_gateway(
            c, gateway_id, actor=actor(by), at=now(), accounts=accounts
        ),
    )
    typer.echo(json.dumps({"gateway_id": gateway_id, "revoked": True}))
