"""What every benchmark shares: its command line, the machine line, and `bench/RESULTS.md`.

Every bench module's `main(argv)` builds its parser with `parser()`, so each one answers
`--help` (and exits before measuring anything), takes `--quick` (the short run, about a minute,
that `make bench` uses) and `--no-write` (print only). Figures go to `bench/RESULTS.md`
(appended, never rewritten: the measured history stays readable) with `machine()`, which names
the CPU model as `lscpu` reports it and the load average, because the development boxes differ
(AMD EPYC and Intel Xeon) and are shared by several engineers.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The argument parser of `python -m bench.<module>` with `--quick` and `--no-write`."""
    text = (doc or "").strip()
    first, _, rest = text.partition("\n")
    out = argparse.ArgumentParser(
        prog=f"python -m bench.{module}",
        description=first,
        epilog=rest.strip() or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    out.add_argument(
        "--quick", action="store_true", help="the short run (about a minute) that `make bench` uses"
    )
    out.add_argument(
        "--no-write", action="store_true", help="print the figures, do not append to RESULTS.md"
    )
    return out


def cpu_model() -> str:
    """The CPU's model name as `lscpu` prints it (e.g. `AMD EPYC`, `Intel(R) Xeon(R) ...`)."""
    lscpu = shutil.which("lscpu")
    if lscpu:
        out = subprocess.run([lscpu], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_1min() -> float:
    """The 1-minute load average (the box is shared: every figure is reported with it)."""
    return os.getloadavg()[0]


def machine(load_start: float | None = None) -> str:
    """`CPU: <lscpu model name>, N cores, memory, Python, kernel; load average ...`."""
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load_end = load_1min()
    load = (
        f"load average (1 min) {load_start:.1f} at start, {load_end:.1f} at end"
        if load_start is not None
        else f"load average (1 min) {load_end:.1f}"
    )
    return (
        f"CPU: {cpu_model()} (lscpu model name), {os.cpu_count()} cores, {mem_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; {load}"
    )


def stamp() -> str:
    """The current UTC time for a section heading."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write(text: str, args: argparse.Namespace) -> None:
    """Print `text` and append it to bench/RESULTS.md unless `--no-write`."""
    print(text, flush=True)
    if getattr(args, "no_write", False):
        return
    body = text if text.startswith("\n") else "\n" + text
    with RESULTS.open("a", encoding="utf-8") as out:
        out.write(body if body.endswith("\n") else body + "\n")
