"""`python -m bench [--quick] [--no-write] [NAME ...]`: run the benchmarks, each in its own process.

`make bench` runs `python -m bench --quick`: every module's short run (about a minute each),
appending its figures to bench/RESULTS.md. Without `--quick` each module runs its full
measurement (long: tens of minutes in all). NAME is a module such as `bench_rules`; default all.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import time
from pathlib import Path

from bench import common


def modules() -> list[str]:
    """The benchmark modules (`bench_*.py` beside this file)."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chosen modules in turn; return non-zero when any failed."""
    parser = common.parser("", __doc__)
    parser.prog = "python -m bench"
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(modules()))
    args = parser.parse_args(argv)
    names = args.names or modules()
    unknown = sorted(set(names) - set(modules()))
    if unknown:
        parser.error(f"no such benchmark: {', '.join(unknown)}")
    flags = [f for f, on in (("--quick", args.quick), ("--no-write", args.no_write)) if on]
    if not args.no_write:
        common.write(
            f"\n# `python -m bench {' '.join(flags)}` ({common.stamp()}): {', '.join(names)}\n\n"
            f"Machine: {common.machine()}.",
            args,
        )
    failed = []
    for name in names:
        print(f"== bench.{name} {' '.join(flags)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, "-m", f"bench.{name}", *flags])
        print(f"== bench.{name}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
