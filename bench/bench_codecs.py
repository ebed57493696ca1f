"""Codec decode throughput per characteristic (ops/s), next to a struct.unpack baseline.

Run: `.venv/bin/python -m bench.bench_codecs` (about half a minute). Appends the figures with
the machine to bench/RESULTS.md.

Method: for every registered characteristic, the largest golden vector of
`tests/devices/codecs/vectors.py` is decoded through `devices.codecs.decode` (UUID lookup
included) in a `timeit` loop; the best of 5 repeats is reported. The baseline, measured in the
same run, is `struct.unpack` of a 10-byte `<BH7B` layout (the fixed part of a Glucose
Measurement) without any validation: the cost of merely splitting bytes in Python.
"""

from __future__ import annotations

import platform
import struct
import timeit
from datetime import UTC, datetime
from pathlib import Path

from devices.codecs import NAMES, REGISTRY, decode
from tests.devices.codecs.vectors import VECTORS

ROOT = Path(__file__).parents[1]
NUMBER = 20_000
REPEAT = 5


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ops_per_s(statement: object) -> float:
    best = min(timeit.repeat(statement, number=NUMBER, repeat=REPEAT))  # type: ignore[arg-type]
    return NUMBER / best


def main() -> None:
    """Measure, print and append to bench/RESULTS.md."""
    payload = bytes.fromhex("0f0300e80701020304055c")[:10]
    unpack = struct.Struct("<BH7B").unpack
    baseline = _ops_per_s(lambda: unpack(payload))
    rows = []
    for uuid in sorted(REGISTRY):
        vector = max((v for v in VECTORS if v.uuid == uuid), key=lambda v: len(v.data))
        data = vector.data
        decode(uuid, data)  # warm up, and fail loudly if the vector broke
        rate = _ops_per_s(lambda u=uuid, d=data: decode(u, d))
        rows.append(f"| 0x{uuid:04X} {NAMES[uuid]} | {len(data)} | {rate:,.0f} |")
        print(rows[-1], flush=True)
    machine = (
        f"`{' '.join(platform.uname())}`; CPU: {_cpu_model()}; Python {platform.python_version()}"
    )
    section = "\n".join(
        [
            "",
            f"## devices: codecs decode throughput ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
            "",
            f"Machine: {machine}. Shared 2-core box (other work running), so treat as a floor.",
            f"Best of {REPEAT} x {NUMBER:,} calls of `decode(uuid, payload)` per characteristic.",
            f"Baseline (same run): `struct.unpack('<BH7B')` of 10 bytes: {baseline:,.0f} ops/s.",
            "",
            "| characteristic | payload bytes | decode ops/s |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    print(section)
    with (ROOT / "bench" / "RESULTS.md").open("a") as results:
        results.write(section)


if __name__ == "__main__":
    main()
