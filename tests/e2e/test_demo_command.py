"""`homevitals demo` as a user runs it: a subprocess, a shipped scenario, its exit status and
summary (t1-hypo-week: one meter, a week of readings, two level-2 hypos and one level-1)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ServerUnavailableError, which

ROOT = Path(__file__).parents[2]


def _demo(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    return subprocess.run(
        [sys.executable, "-m", "homevitals", "demo", "--dir", str(tmp_path / "demo"), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    try:
        which("mosquitto")
    except ServerUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mosquitto is required under CI=true: {exc}")
        pytest.skip(str(exc))


def test_demo_exits_zero_when_the_expected_alerts_arrive(tmp_path: Path) -> None:
    done = _demo("--scenario", "t1-hypo-week", "--timeout-s", "60", tmp_path=tmp_path)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "gateway: paired Contour000001" in out
    assert re.search(r"readings:\s+30 on the devices, 30 in the record store", out), out
    assert re.search(r"expected glucose\.hypo_l2: 2/2 received\s+ok", out), out
    assert re.search(r"expected glucose\.hypo_l1: 1/1 received\s+ok", out), out
    assert out.rstrip().endswith("result: PASS")
    received = re.findall(r"care team received alert\.opened (\S+) \(priority (\w+)\)", out)
    assert sorted(received) == [("glucose.hypo_l1", "medium"), ("glucose.hypo_l2", "high"),
                                ("glucose.hypo_l2", "high")]  # fmt: skip
    # Every child was stopped: nothing listens on the demo's broker port any more.
    conf = (tmp_path / "demo" / "mosquitto.conf").read_text()
    port = int(re.findall(r"listener (\d+)", conf)[0])
    assert subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True,
                          check=False).stdout.count("LISTEN") == 0  # fmt: skip


def test_demo_names_what_is_missing_and_exits_one(tmp_path: Path) -> None:
    # A scenario whose expectation its data cannot meet: the cuff's readings are normal.
    scenario = tmp_path / "normal-cuff.toml"
    scenario.write_text(
        'name = "normal-cuff"\nseed = 5\nstart = 2026-03-01T00:00:00Z\ndays = 2\n'
        "time_acceleration = 86400.0\nonly_expected_alerts = false\n"
        '[patient]\nid = "pat-e2e-002"\n'
        '[[devices]]\nmodel = "omron-like"\nserial = "E2E0000BP2"\n'
        "[devices.blood_pressure]\nsystolic_mmhg = 118.0\ndiastolic_mmhg = 76.0\n"
        '[[expected_alerts]]\nrule = "bp.crisis"\n'
    )
    done = _demo("--scenario", str(scenario), "--timeout-s", "8", tmp_path=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "expected bp.crisis: 0/1 received  MISSING" in done.stdout
    assert "result: FAIL, missing {'bp.crisis': '0 of 1 alert.opened webhooks'}" in done.stdout


def test_an_unknown_scenario_is_named(tmp_path: Path) -> None:
    done = _demo("--scenario", "no-such-scenario", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "no-such-scenario" in done.stderr
    assert not (tmp_path / "demo" / "mosquitto.conf").exists()  # failed before any child
