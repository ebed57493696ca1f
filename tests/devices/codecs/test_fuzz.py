"""A bounded atheris run of `fuzz_decode all` (every characteristic, every profile).

A crash (anything but `DecodeError`, or a decoded value that re-encodes differently) makes
libFuzzer exit non-zero and print the input; the assertion shows the tail of its output.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devices.codecs import REGISTRY
from tests.devices.codecs.vectors import VECTORS

ROOT = Path(__file__).parents[3]
FUZZ_SECONDS = 20

if importlib.util.find_spec("atheris") is None:  # pragma: no cover - x86_64 CI has it
    if os.environ.get("CI") == "true":
        raise RuntimeError("atheris is in the test extras but not installed")
    pytest.skip("atheris is not installed (non-x86_64?)", allow_module_level=True)


def test_fuzz_decode_every_characteristic_briefly(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.devices.codecs.fuzz_decode",
            "all",
            str(tmp_path),
            f"-max_total_time={FUZZ_SECONDS}",
            "-seed=1",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    tail = "\n".join(done.stderr.splitlines()[-30:])
    assert done.returncode == 0, tail
    assert "Done " in done.stderr, tail
    # The seed corpus holds a golden vector of every characteristic, so each was exercised.
    seeded = {p.name.removeprefix("all-") for p in tmp_path.iterdir() if p.name.startswith("all-")}
    assert {v.uuid for v in VECTORS if v.name in seeded} == set(REGISTRY)
