"""A gateway in another process joins the virtual air over HCI/TCP and reads a meter; the CLI
lists models and scenarios; a scenario run makes its readings on the air."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from firmware_sims.air import VirtualAir
from firmware_sims.cli import app
from firmware_sims.hci_bridge import open_hci_endpoint
from firmware_sims.runner import ScenarioRun
from firmware_sims.scenario_files import load_scenario
from tests.firmware_sims.test_glucose_meter import ADDRESS, expected_bytes, make_meter

ROOT = Path(__file__).parents[2]


async def test_a_second_process_joins_the_air_and_reads_every_record(air: VirtualAir) -> None:
    meter = make_meter(air)
    for value in (80, 95, 180):
        meter.take_reading(value)
    await meter.power_on()
    endpoint = await open_hci_endpoint(air)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.firmware_sims.remote_gateway", endpoint.spec, ADDRESS,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, stderr.decode()
    finally:
        await endpoint.close()
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["name"] == meter.local_name
    assert result["records"] == [payload.hex() for _, payload in expected_bytes(meter)]
    assert result["response"] == "06000101"
    assert await meter.bonded_hosts() == ["C0:11:22:33:44:66"]  # the remote host bonded


async def test_scenario_run_makes_every_planned_reading_on_the_air(air: VirtualAir) -> None:
    scenario = load_scenario("bp-crisis")
    run = ScenarioRun(scenario, air)
    await run.start()
    # no waiting for simulated time here: make the timeline's readings directly
    timeline = run.timeline()
    for _, index, sample in timeline:
        await run.make(index, sample)
    cuff = run.devices[0]
    assert run.readings_made == len(timeline) == len(scenario.plan(0))
    assert len(cuff.memory) == len(timeline)  # type: ignore[union-attr]


def test_cli_lists_models_and_scenarios() -> None:
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "contour-like" in result.output and "beurer-like" in result.output
    assert "t1-hypo-week" in result.output and "glucose.hypo_l2>=2" in result.output


def test_cli_run_names_an_unknown_scenario() -> None:
    result = CliRunner().invoke(app, ["run", "no-such-scenario", "--exit-when-done"])
    assert result.exit_code == 2
    assert "no scenario 'no-such-scenario'" in result.output


async def test_firmware_runs_unchanged_on_a_bumble_transport(air: VirtualAir) -> None:
    """`--transport tcp-client:...`: a meter on an HCI transport (here: into this air's HCI
    bridge, as it would be on a USB dongle) is read by a central on the air."""
    from bleak import BleakClient

    from firmware_sims.air import RadioAir
    from firmware_sims.glucose_meter import GlucoseMeter
    from firmware_sims.models import get_model
    from tests.firmware_sims.test_glucose_meter import RACP, Transfer, subscribe_all

    endpoint = await open_hci_endpoint(air)
    radio = await RadioAir.open(endpoint.spec)
    try:
        meter = GlucoseMeter(
            radio, get_model("contour-like"), serial="R1", address="F3:00:00:00:00:01"
        )
        meter.take_reading(77)
        await meter.power_on()
        _, client_cls = air.backends()
        transfer = Transfer()
        async with BleakClient("F3:00:00:00:00:01", backend=client_cls, pair=True) as client:
            await subscribe_all(client, transfer)
            await client.write_gatt_char(RACP, b"\x01\x01", response=True)
            assert await transfer.racp.get() == b"\x06\x00\x01\x01"
        assert transfer.received == expected_bytes(meter)
    finally:
        await radio.close()
        await endpoint.close()
