"""The default demo, exactly as `make demo` runs it (two patients, two weeks at the default
speed, about two and a half minutes here), with `--keep-running`: it must pass its self-check,
then leave the care-team dashboard up with its development sign-in, where the family practice
sees the patients but not their blood pressure. Ctrl-C then stops everything and the exit status
is the self-check's. Slow: `make soak`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import which

ROOT = Path(__file__).parents[2]
RUN_TIMEOUT_S = 600.0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_story_passes_and_leaves_the_dashboard_up(tmp_path: Path) -> None:
    which("mosquitto")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HV_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "homevitals", "demo", "--dir", str(tmp_path / "demo"),
         "--keep-running"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
            if "(Ctrl-C stops everything" in line:
                break
        out = "\n".join(lines)
        assert "result: PASS" in out, out
        assert re.search(r"unaccounted:\s+0\n", out), out
        assert re.search(r"alert glucose\.hypo_l2 for Wang Jianguo: 1/1 verified\s+ok", out)
        assert re.search(r"alert bp\.home_aha_ama_2020 for Wang Jianguo: 1/1 verified\s+ok", out)
        assert "for Li Mei (not declared" not in out, out  # the well-controlled patient: quiet
        assert "paired Accu-Chek Guide ...6702 [passkey 305917 shown on the device]" in out
        for team in ("Riverside Hospital", "Riverside Community Health Centre",
                     "Dr Zhou's family practice"):  # fmt: skip
            assert team in out
        url = re.search(r"dashboard: (http://127\.0\.0\.1:\d+/dashboard/)", out)
        code = re.search(r"development sign-in code: (\S+)", out)
        practice = re.search(r"(\S+) \(Dr Zhou, Dr Zhou's family practice; sees ([^)]*)\)", out)
        assert url and code and practice, out
        assert "blood_pressure" not in practice.group(2)
        with httpx.Client(base_url=url.group(1), timeout=30) as http:
            signed = http.post("dev-login", data={"member_id": practice.group(1),
                                                  "code": code.group(1)})  # fmt: skip
            assert signed.status_code == 303, signed.text
            patients = http.get("")
            assert patients.status_code == 200
            assert "Wang Jianguo" in patients.text and "Li Mei" in patients.text
            page = http.get("patients/pat-wang-001")
            assert page.status_code == 200
            assert "The patient has not shared this kind of data with your team." in page.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code_at_exit = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            if proc.stdout is not None:
                lines += proc.stdout.read().splitlines()
                proc.stdout.close()
    assert code_at_exit == 0, "\n".join(lines[-40:])
