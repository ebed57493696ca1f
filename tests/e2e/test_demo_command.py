"""`homevitals demo` as a user runs it: a subprocess, a shipped scenario at a high `--speed`, its
exit status, its self-check, and the self-check judging a kept run again (`--check-only`) after
a reading or an audit entry was taken away.

Adds about a minute to `make test` (one demo run of about 45 s and a few checks of a few
seconds); the full default story (two patients, two weeks) runs in `make soak`."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from firmware_sims.scenario_files import SCENARIO_DIR
from tests.support.servers import ServerUnavailableError, which

ROOT = Path(__file__).parents[2]


def _homevitals(*args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    return subprocess.run(
        [sys.executable, "-m", "homevitals", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _needs_mosquitto() -> None:
    try:
        which("mosquitto")
    except ServerUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"mosquitto is required under CI=true: {exc}")
        pytest.skip(str(exc))


def _faulty_with_a_hypo(tmp_path: Path) -> Path:
    """The shipped faulty-devices scenario (a meter that drops the link after three records,
    keeps every fourth record twice, wraps its sequence number and jumps its clock; a cuff
    that sends every fifth indication truncated), with a level-2 hypo on its second day."""
    text = (SCENARIO_DIR / "faulty-devices.toml").read_text()
    text = text.replace("readings_per_day = 3", "readings_per_day = 3\nhypo_days = [1]\n"
                        "hypo_nadir_mg_dl = 30.0")  # fmt: skip
    path = tmp_path / "faulty-with-a-hypo.toml"
    path.write_text(text + '\n[[expected_alerts]]\nrule = "glucose.hypo_l2"\n')
    return path


def test_faulty_devices_are_accounted_for_and_a_lost_reading_fails_the_check(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "demo"
    done = _homevitals("demo", "--scenario", str(_faulty_with_a_hypo(tmp_path)), "--speed",
                       "21600", "--dir", str(directory), "--timeout-s", "60")  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # 32 records: 13 meter readings (3 of them kept twice by the meter) and 16 cuff readings,
    # 3 of which went out truncated and are kept in quarantine with the decoder's reason.
    assert re.search(r"readings produced by the devices: 32\n", out), out
    assert re.search(r"stored:\s+29 \(3 of them copies a device kept twice, stored once\)", out)
    assert re.search(r"quarantined, with why:\s+3\n", out), out
    assert re.search(r"3 quarantined: hub quarantine: BloodPressureMeasurement\.", out), out
    assert re.search(r"unaccounted:\s+0\n", out), out
    assert re.search(r"alert glucose\.hypo_l2 for .*: 1/1 verified\s+ok", out), out
    assert re.search(r"audit trail: intact", out), out
    assert out.rstrip().endswith("result: PASS")
    # The hub was enrolled with a code and got its own broker account.
    assert re.search(r"made hub enrolment code [0-9A-Z]{5}-[0-9A-Z]{5}", out), out
    assert "the hub redeemed it at the enrolment endpoint" in out
    assert "gateway id gw-" in out
    # The nurse followed the alert.opened webhook to the API and acknowledged it there.
    assert re.search(r"Nurse on call opened the glucose\.hypo_l2 alert", out), out
    # Every child stopped: nothing listens on the demo's broker ports any more.
    conf = (directory / "broker" / "mosquitto.conf").read_text()
    for port in re.findall(r"listener (\d+)", conf):
        listening = subprocess.run(["ss", "-ltn", f"sport = :{port}"], capture_output=True,
                                   text=True, check=False).stdout  # fmt: skip
        assert listening.count("LISTEN") == 0

    # A reading the meter holds disappears from the record store: the check must fail, naming it.
    devices = json.loads((directory / "devices.json").read_text())
    lost = next(r for r in next(iter(devices.values())) if r["sequence"] == 65532)
    with sqlite3.connect(directory / "homevitals.db") as db:
        assert db.execute("DELETE FROM readings WHERE reading_id = ?",
                          (lost["reading_id"],)).rowcount == 1  # fmt: skip
    gone = _homevitals("demo", "--check-only", "--dir", str(directory), timeout_s=120)
    assert gone.returncode == 1, gone.stdout + gone.stderr
    assert re.search(r"unaccounted:\s+1\n", gone.stdout), gone.stdout
    assert f"UNACCOUNTED: {lost['label']} sequence 65532, reading {lost['reading_id']}" in (
        gone.stdout
    )
    assert gone.stdout.rstrip().endswith("result: FAIL, 1 readings unaccounted")

    # An alert the scenario declares and nobody received fails it.
    story = json.loads((directory / "story.json").read_text())
    story["patients"][0]["expected"]["bp.crisis"] = 1
    (directory / "story.json").write_text(json.dumps(story))
    missing = _homevitals("demo", "--check-only", "--dir", str(directory), timeout_s=120)
    assert missing.returncode == 1
    assert "alert bp.crisis for Demo patient pat-f-006: 0/1 verified  MISSING" in missing.stdout
    assert "bp.crisis for Demo patient pat-f-006: 0 of 1 alert.opened webhooks" in missing.stdout

    # An edited audit entry fails it too.
    with sqlite3.connect(directory / "homevitals.db") as db:
        db.execute("UPDATE audit_log SET action = 'consent.withdraw' WHERE seq = 3")
    edited = _homevitals("demo", "--check-only", "--dir", str(directory), timeout_s=120)
    assert edited.returncode == 1
    assert re.search(r"audit trail: FAILED \(audit trail BROKEN at entry 3", edited.stdout), (
        edited.stdout
    )


def test_an_unknown_scenario_is_named(tmp_path: Path) -> None:
    done = _homevitals("demo", "--scenario", "no-such-scenario", "--dir", str(tmp_path / "d"))
    assert done.returncode == 2
    assert "no-such-scenario" in done.stderr
    assert not (tmp_path / "d" / "broker").exists()  # failed before any child


def test_check_only_needs_a_demo_directory(tmp_path: Path) -> None:
    done = _homevitals("demo", "--check-only", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert "homevitals.db is missing" in done.stderr
