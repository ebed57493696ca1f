"""Every benchmark answers `--help` without measuring anything, and offers `--quick`.

The modules run as subprocesses at once (each imports its peers: a few seconds in all);
bench/RESULTS.md must be byte-for-byte unchanged afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
BENCH = ROOT / "bench"


def test_every_bench_answers_help_with_quick_and_writes_nothing() -> None:
    modules = sorted(p.stem for p in BENCH.glob("bench_*.py"))
    assert "bench_rules" in modules and "bench_e2e" in modules
    before = (BENCH / "RESULTS.md").read_bytes()
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", f"bench.{name}" if name else "bench", "--help"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in ["", *modules]
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, err.decode())
        text = out.decode()
        assert text.startswith("usage: python -m bench"), (name, text[:200])
        assert "--quick" in text and "--no-write" in text, name
    assert (BENCH / "RESULTS.md").read_bytes() == before
