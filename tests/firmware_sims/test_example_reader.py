"""The README's bleak script reads the demo scenario's meter and cuff."""

from __future__ import annotations

import pytest

from bumble_bleak.backend import BleakBackends
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.examples import read_all
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.runner import ScenarioRun
from firmware_sims.scenario_files import load_scenario


async def test_example_script_reads_the_demo_meter_and_cuff(
    air: VirtualAir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(read_all, "QUIET_S", 0.3)
    run = ScenarioRun(load_scenario("home-demo"), air)
    await run.start()
    for _, index, sample in run.timeline()[:10]:
        await run.make(index, sample)
    scanner_cls, client_cls = air.backends()

    result = await read_all.read_all(BleakBackends(scanner_cls, client_cls), scan_s=0.5)

    # the scenario's CGM is not what the example reads (it scans for GLS and BLS)
    [meter] = [d for d in run.devices if isinstance(d, GlucoseMeter)]
    [cuff] = [d for d in run.devices if isinstance(d, BloodPressureCuff)]
    assert set(result) == {meter.local_name, cuff.local_name}
    meter_lines = result[meter.local_name]
    assert meter_lines[-1] == "RACP response 06000101"
    assert sum(line.startswith("glucose #") for line in meter_lines) == len(meter.racp.records)
    cuff_lines = result[cuff.local_name]
    assert len(cuff_lines) == len(cuff.memory) > 0
    assert all(line.startswith("BP ") for line in cuff_lines)
