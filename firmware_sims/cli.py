"""`homevitals sim`: list the simulated device models, run a scenario's devices.

    homevitals sim list
    homevitals sim run t1-hypo-week                       # virtual air + HCI over TCP :7700
    homevitals sim run t1-hypo-week --transport usb:0     # the first device on a real dongle
    homevitals sim run my.toml --transport tcp-client:127.0.0.1:9000

On the virtual transport the devices share an in-process air, and an HCI-over-TCP endpoint lets
a gateway in another process join it (`ble_transport = "tcp-client:127.0.0.1:7700"`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Annotated

import typer

from firmware_sims.air import RadioAir, Timing, VirtualAir
from firmware_sims.errors import FirmwareSimsError
from firmware_sims.expectations import scenario_evidence
from firmware_sims.hci_bridge import open_hci_endpoint
from firmware_sims.models import MODELS
from firmware_sims.runner import ScenarioRun
from firmware_sims.scenario import Scenario
from firmware_sims.scenario_files import load_scenario, shipped_scenarios

app = typer.Typer(no_args_is_help=True, add_completion=False)
logger = logging.getLogger(__name__)


@app.command("list")
def list_models() -> None:
    """Show the device models and the shipped scenarios."""
    typer.echo("models:")
    for model in MODELS.values():
        extras: list[str] = [model.security]
        if model.bonded_host_only:
            extras.append("bonded-host-only")
        if model.base_time_utc:
            extras.append("UTC base time")
        if model.send_all_on_connect:
            extras.append("sends all")
        if model.beurer_quirks:
            extras.append("Beurer byte quirks")
        typer.echo(
            f"  {model.key:18} {model.kind.value:14} {model.manufacturer} {model.model}"
            f" [{', '.join(extras)}]"
        )
    typer.echo("scenarios:")
    for name in shipped_scenarios():
        scenario = load_scenario(name)
        alerts = ", ".join(f"{a.rule}>={a.min_count}" for a in scenario.expected_alerts)
        typer.echo(f"  {name:22} {scenario.days:3} days, expects: {alerts or 'no alerts'}")


@app.command("run")
def run(
    scenario: Annotated[str, typer.Argument(help="a shipped scenario name or a TOML path")],
    transport: Annotated[
        str, typer.Option(help="virtual | usb:0 | tcp-client:HOST:PORT | any Bumble transport")
    ] = "virtual",
    *,
    hci_host: Annotated[str, typer.Option(help="HCI-over-TCP listen address (virtual)")] = (
        "127.0.0.1"
    ),
    hci_port: Annotated[int, typer.Option(help="HCI-over-TCP port (virtual), 0 = any")] = 7700,
    acceleration: Annotated[
        float | None, typer.Option(help="override the scenario's time acceleration")
    ] = None,
    exit_when_done: Annotated[
        bool, typer.Option(help="stop after the last reading instead of staying on the air")
    ] = False,
    timing: Annotated[
        str,
        typer.Option(
            help="virtual air: 'realistic' (connection events, MTU, data length per model) "
            "or 'fast' (every packet at once)"
        ),
    ] = "realistic",
) -> None:
    """Run a scenario's devices (Ctrl-C stops)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        parsed = load_scenario(scenario)
    except FirmwareSimsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    if acceleration is not None:
        if acceleration <= 0:
            raise typer.BadParameter("must be > 0", param_hint="--acceleration")
        parsed = _with_acceleration(parsed, acceleration)
    if timing not in ("fast", "realistic"):
        raise typer.BadParameter("must be 'fast' or 'realistic'", param_hint="--timing")
    timing_mode: Timing = "realistic" if timing == "realistic" else "fast"
    evidence = scenario_evidence(parsed)
    typer.echo(f"scenario {parsed.name}: {len(parsed.devices)} device(s), data shows {evidence}")
    try:
        asyncio.run(_run(parsed, transport, hci_host, hci_port, exit_when_done, timing=timing_mode))
    except KeyboardInterrupt:
        typer.echo("stopped")
    except (FirmwareSimsError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def _with_acceleration(scenario: Scenario, acceleration: float) -> Scenario:
    return replace(scenario, time_acceleration=acceleration)


async def _run(
    scenario: Scenario,
    transport: str,
    hci_host: str,
    hci_port: int,
    exit_when_done: bool,
    *,
    timing: Timing,
) -> None:
    if transport != "virtual":
        await _run_on_radio(scenario, transport, exit_when_done)
        return
    async with VirtualAir(timing=timing) as air:
        endpoint = await open_hci_endpoint(air, hci_host, hci_port)
        typer.echo(f"virtual air: join with ble_transport = {endpoint.spec!r}")
        run = ScenarioRun(scenario, air)
        await run.start()
        for device in run.devices:
            typer.echo(f"  {device.local_name:20} {device.address}  ({device.model.key})")
        try:
            made = await run.run()
            typer.echo(f"all {made} readings made; devices stay on the air (Ctrl-C stops)")
            if not exit_when_done:
                await asyncio.Event().wait()
        finally:
            await endpoint.close()


async def _run_on_radio(scenario: Scenario, transport: str, exit_when_done: bool) -> None:
    radio = await RadioAir.open(transport)
    if len(scenario.devices) > 1:
        typer.echo(f"a radio carries one device: running {scenario.devices[0].serial}", err=True)
    try:
        run = ScenarioRun(replace(scenario, devices=scenario.devices[:1]), radio)
        await run.start()
        device = run.devices[0]
        typer.echo(f"{device.local_name} advertising on {transport} as {device.address}")
        made = await run.run()
        typer.echo(f"all {made} readings made")
        if not exit_when_done:
            await asyncio.Event().wait()
    finally:
        await radio.close()
