"""Codec decode throughput per characteristic (ops/s), next to a struct.unpack baseline.

Run: `.venv/bin/python -m bench.bench_codecs [--quick]` (about half a minute; `--quick` a few
seconds). Appends the figures with the machine to bench/RESULTS.md.

Method: for every registered characteristic, the largest golden vector of
`tests/devices/codecs/vectors.py` is decoded through `devices.codecs.decode` (UUID lookup
included) in a `timeit` loop; the best of 5 repeats is reported. The baseline, measured in the
same run, is `struct.unpack` of a 10-byte `<BH7B` layout (the fixed part of a Glucose
Measurement) without any validation: the cost of merely splitting bytes in Python.
"""

from __future__ import annotations

import struct
import timeit

from bench import common
from devices.codecs import NAMES, REGISTRY, decode
from tests.devices.codecs.vectors import VECTORS

NUMBER = 20_000
REPEAT = 5


def _ops_per_s(statement: object) -> float:
    best = min(timeit.repeat(statement, number=NUMBER, repeat=REPEAT))  # type: ignore[arg-type]
    return NUMBER / best


def main(argv: list[str] | None = None) -> None:
    """Measure, print and append to bench/RESULTS.md."""
    global NUMBER, REPEAT
    args = common.parser("bench_codecs", __doc__).parse_args(argv)
    if args.quick:
        NUMBER, REPEAT = 5_000, 3
    load_start = common.load_1min()
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
    section = "\n".join(
        [
            "",
            f"## devices: codecs decode throughput ({common.stamp()})",
            "",
            f"Machine: {common.machine(load_start)}.",
            f"Best of {REPEAT} x {NUMBER:,} calls of `decode(uuid, payload)` per characteristic.",
            f"Baseline (same run): `struct.unpack('<BH7B')` of 10 bytes: {baseline:,.0f} ops/s.",
            "",
            "| characteristic | payload bytes | decode ops/s |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    common.write(section, args)


if __name__ == "__main__":
    main()
