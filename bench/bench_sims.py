"""How many simulated peripherals one process sustains at one reading per second each.

    python -m bench.bench_sims [--max N] [--window S] [--quick]

Each step puts N Omron-like cuffs on one virtual air, connects, bonds and subscribes one bleak
client (our backend) per cuff, then has every cuff run a full cuff cycle (ICP notifications and
the measurement indication, confirmed) once per second, staggered, for `window` seconds. A step
is sustained when at least 99 % of the target readings reached their bleak callbacks and the
95th percentile of cycle-start-to-callback latency stays under 1 s (no growing backlog).
Baseline in the same run: N = 1. Results are appended to bench/RESULTS.md with machine info.
`--quick`: up to 200 cuffs with a 5 s window (about a minute).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from bleak import BleakClient

from bench import common
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.models import get_model

BPM = "00002a35-0000-1000-8000-00805f9b34fb"
RESULTS = Path(__file__).with_name("RESULTS.md")


async def _step(n: int, window_s: float) -> dict[str, float]:
    async with VirtualAir(supervision_timeout_s=5.0) as air:
        _, client_cls = air.backends()
        model = get_model("omron-like")
        cuffs: list[BloodPressureCuff] = []
        clients: list[BleakClient] = []
        latencies: list[float] = []
        started: dict[tuple[int, int], float] = {}
        setup_t0 = time.perf_counter()
        for i in range(n):
            address = f"D0:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}"
            cuff = BloodPressureCuff(
                air, model, serial=f"B{i:06d}", address=address, advertising_interval_ms=20
            )
            await cuff.power_on()
            client = BleakClient(address, backend=client_cls, pair=True, timeout=30)
            await client.connect()

            def on_data(_c: object, data: bytearray, index: int = i) -> None:
                key = (index, data[1])  # systolic SFLOAT low byte (exponent 0) marks the cycle
                t = started.pop(key, None)
                if t is not None:
                    latencies.append(time.perf_counter() - t)

            await client.start_notify(BPM, on_data)
            await cuff.transfer_done.wait()
            cuffs.append(cuff)
            clients.append(client)
        setup_s = time.perf_counter() - setup_t0

        async def drive(index: int, cuff: BloodPressureCuff) -> int:
            await asyncio.sleep(index / n)  # stagger the cycles over the second
            cycles = 0
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            end = loop.time() + window_s
            while loop.time() < end:
                systolic = 100 + cycles % 100
                started[(index, systolic & 0xFF)] = time.perf_counter()
                await cuff.measure(systolic, 70, 60)
                cycles += 1
                next_at += 1.0
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            return cycles

        run_t0 = time.perf_counter()
        cycles = sum(await asyncio.gather(*(drive(i, c) for i, c in enumerate(cuffs))))
        await asyncio.sleep(1.0)  # let the last confirmations arrive
        elapsed = time.perf_counter() - run_t0
        for client in clients:
            await client.disconnect()
    target = n * window_s
    return {
        "n": n,
        "setup_s": setup_s,
        "target": target,
        "cycles": cycles,
        "delivered": len(latencies),
        "delivered_ratio": len(latencies) / target,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": 1000
        * (statistics.quantiles(latencies, n=20)[18] if len(latencies) >= 20 else max(latencies))
        if latencies
        else float("nan"),
        "elapsed_s": elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the ramp and append the results to bench/RESULTS.md."""
    parser = common.parser("bench_sims", __doc__)
    parser.add_argument("--max", type=int, default=1500)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.max, args.window = min(args.max, 200), 5.0
    load_start = common.load_1min()
    rows = []
    sustained = 0
    for n in [1, 25, 50, 100, 200, 300, 400, 600, 800, 1000, 1500]:
        if n > args.max:
            break
        row = asyncio.run(_step(n, args.window))
        ok = row["delivered_ratio"] >= 0.99 and row["p95_ms"] < 1000
        print(
            f"N={n:4d} setup {row['setup_s']:6.1f}s delivered {row['delivered']:.0f}/"
            f"{row['target']:.0f} ({100 * row['delivered_ratio']:.1f}%) p50 {row['p50_ms']:.1f} ms "
            f"p95 {row['p95_ms']:.1f} ms {'OK' if ok else 'NOT SUSTAINED'}",
            flush=True,
        )
        rows.append((row, ok))
        if not ok:
            break
        sustained = n
    lines = [
        "",
        f"## firmware_sims: simulated peripherals per process ({common.stamp()})",
        "",
        f"Machine: {common.machine(load_start)}. Command: `python -m bench.bench_sims "
        f"--window {args.window:g} --max {args.max}`.",
        "Omron-like cuffs on one virtual air, one bonded bleak client (our backend) per cuff,",
        "a full cuff cycle (ICP notifications + confirmed measurement indication) per cuff per",
        "second.",
        "Baseline: N = 1 in the same run. Sustained = >= 99 % delivered and p95 latency < 1 s.",
        "",
        "| N | setup (connect+bond+subscribe) s | delivered / target | p50 ms | p95 ms "
        "| sustained |",
        "|---|---|---|---|---|---|",
    ]
    for row, ok in rows:
        lines.append(
            f"| {row['n']:.0f} | {row['setup_s']:.1f} "
            f"| {row['delivered']:.0f} / {row['target']:.0f} "
            f"| {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {'yes' if ok else 'no'} |"
        )
    lines += [
        "",
        f"Largest sustained N in this run: **{sustained}** peripherals at 1 reading/s each.",
        "",
    ]
    common.write("\n".join(lines), args)
    print(f"largest sustained: {sustained}")


if __name__ == "__main__":
    main()
