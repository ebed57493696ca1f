"""`homevitals gateway enrol|run|pair|devices|unpair`: the hub from a terminal.

Every command reads the same settings as the running hub (`--settings FILE`, then the
`HV_GATEWAY_*` environment). Bad settings exit with status 2 naming the key. `pair`, `devices`
and `unpair` work on the hub's database while the hub itself is stopped (the radio has one
owner at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from gateway.app import configure_logging, open_hub, run
from gateway.enrolment import redeem
from gateway.errors import (
    EnrolmentError,
    GatewayError,
    InvalidInputError,
    SettingsError,
    UnknownDeviceError,
)
from gateway.page_guard import PinFile
from gateway.settings import GatewaySettings, load_settings

app = typer.Typer(help="The home hub: pair devices, run the gateway.", no_args_is_help=True)

SettingsOption = Annotated[
    Path | None, typer.Option("--settings", "-s", help="TOML settings file", exists=True)
]


def _settings(path: Path | None) -> GatewaySettings:
    try:
        return load_settings(path)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc


@app.command("run")
def run_command(settings: SettingsOption = None, log_level: str = "INFO") -> None:
    """Run the gateway: sync paired devices, publish readings, serve the pairing page."""
    loaded = _settings(settings)
    configure_logging(log_level)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run(loaded))


@app.command("pair")
def pair_command(
    address: Annotated[str | None, typer.Argument(help="device address; omit to scan")] = None,
    patient: Annotated[str | None, typer.Option(help="patient id to assign it to")] = None,
    passkey: Annotated[int | None, typer.Option(help="the passkey the device shows")] = None,
    scan_s: float = 5.0,
    settings: SettingsOption = None,
) -> None:
    """Scan for meters and cuffs, or pair the one at ADDRESS with --patient."""
    loaded = _settings(settings)

    async def go() -> int:
        async with open_hub(loaded) as hub:
            if address is None:
                seen = await hub.gateway.discover(scan_s)
                for s in seen:
                    typer.echo(f"{s.address}  {s.kind:15} {s.name or '-'}  rssi {s.rssi}")
                if not seen:
                    typer.echo("no glucose meter or blood-pressure cuff in pairing range")
                return 0
            if patient is None:
                typer.echo("error: --patient is required to pair", err=True)
                return 2
            result = await hub.gateway.pair(address, patient, passkey=passkey, scan_s=scan_s)
            device_id = result.device.device_id if result.identified and result.device else "-"
            typer.echo(f"{result.outcome}: device {device_id}, {result.stored} readings stored")
            if result.detail:
                typer.echo(result.detail, err=True)
            return 0 if result.outcome in ("complete", "nothing_new") else 1

    sys.exit(_run(go))


@app.command("devices")
def devices_command(settings: SettingsOption = None) -> None:
    """List paired devices, their patient, last sync and readings waiting to be sent."""
    loaded = _settings(settings)

    async def go() -> int:
        async with open_hub(loaded, radio=False) as hub:
            for p in hub.gateway.devices():
                synced = p.last_sync_at.isoformat() if p.last_sync_at else "never"
                typer.echo(
                    f"{p.device_id}  {p.kind:15} patient {p.patient_id}  "
                    f"{p.device.manufacturer or ''} {p.device.model or ''} {p.device.serial or ''}"
                    f"  last sync {synced} ({p.last_outcome or '-'})"
                )
            stats = hub.outbox.stats(hub.gateway.clock())
            typer.echo(f"outbox: {stats.pending} pending, {stats.retired} delivered, "
                       f"{stats.quarantined} quarantined")  # fmt: skip
            return 0

    sys.exit(_run(go))


@app.command("unpair")
def unpair_command(device_id: str, settings: SettingsOption = None) -> None:
    """Remove a device's bond and its patient assignment."""
    loaded = _settings(settings)

    async def go() -> int:
        async with open_hub(loaded, radio=False) as hub:
            hub.registry.get(device_id)  # an unknown id fails before the radio is opened
        async with open_hub(loaded) as hub:
            removed = await hub.gateway.unpair(device_id)
            typer.echo(f"unpaired {removed.device_id} (patient {removed.patient_id})")
            return 0

    sys.exit(_run(go))


@app.command("enrol")
def enrol_command(
    code: Annotated[str, typer.Argument(help="the enrolment code from the care team")],
    settings: SettingsOption = None,
) -> None:
    """Enrol this hub with the code a care team made for its patient(s): the server gives the
    hub its identity (gateway id, broker password) and the patients it serves. A further code
    made for this hub adds its patients. Exit 2 for a refused code, 1 when unreachable."""
    loaded = _settings(settings)
    if loaded.enrolment_url is None:
        typer.echo("error: enrolment_url: set the server's enrolment address first", err=True)
        raise typer.Exit(code=2)
    try:
        identity = redeem(loaded.enrolment_url, code, loaded.data_dir)
    except EnrolmentError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2 if exc.reason != "unavailable" else 1) from exc
    names = ", ".join(p.short_name for p in identity.patients)
    typer.echo(f"enrolled as {identity.gateway_id}; patients: {names}")


@app.command("page-pin")
def page_pin_command(settings: SettingsOption = None) -> None:
    """Make a new PIN for the pairing page and print it; the old one stops working at once
    (the PIN is asked for when the page is reachable beyond the hub itself)."""
    loaded = _settings(settings)
    pin = PinFile(loaded.page_pin_path).create()
    typer.echo(f"pairing page PIN: {pin[:4]} {pin[4:]}")


def _run(go: object) -> int:
    try:
        return int(asyncio.run(go()))  # type: ignore[operator]
    except (InvalidInputError, UnknownDeviceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except GatewayError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1
