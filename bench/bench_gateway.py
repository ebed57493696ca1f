"""Gateway benchmarks: a 1,000-record back-fill, and N cuffs at one reading per second each.

    python -m bench.bench_gateway [--sizes 10,50,100] [--window 20] [--backfill-only] [--quick]

`--quick`: 300 records, 10 cuffs, a 10 s window (about a minute).

1. Back-fill: a simulated meter holding 1,000 records is paired and fully fetched by the
   gateway (bond, DIS, clock, RACP "all", readings built and validated, one outbox transaction
   with WAL + synchronous=FULL). Baseline in the same run: plain bleak on the same air doing
   only subscribe + `01 01` + collecting the notifications. Pacing is 0 (the default 0.5 s
   between GATT operations adds about 4 s to a first session, independent of record count).
   Both on the fast air (every packet at once) and on the realistic one (connection events,
   ATT MTU and data length of the meters' `LinkTiming`), next to the timing model's ceiling.
2. Fleet: N Omron-like cuffs on one virtual air, all paired to one gateway and kept connected by
   their sync sessions, each running a full cuff cycle once per second for `window` seconds.
   Every indication is committed to the outbox on its own (docs/reliability.md: an indication is
   confirmed by the stack, so commit it at once). Lost = readings in the cuffs' memory that are not
   in the outbox after the sessions end. Run twice: devices and gateway in one process (CPU is both
   together), then the gateway alone in its own process (`--worker`, joined to the bench's air over
   Bumble's HCI/TCP), CPU its own.
Results are appended to bench/RESULTS.md with machine info.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic

from bench import common
from firmware_sims.air import Timing, VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.hci_bridge import open_hci_endpoint
from firmware_sims.models import get_model
from firmware_sims.radio_timing import METER_TIMING
from gateway.app import open_hub
from gateway.settings import load_settings
from tests.gateway.sims import PASSKEY, add_records, cuff_ids, hub, make_meter

RESULTS = Path(__file__).with_name("RESULTS.md")
RACP = "00002a52-0000-1000-8000-00805f9b34fb"
NOTIFIED = ("00002a18-0000-1000-8000-00805f9b34fb", "00002a34-0000-1000-8000-00805f9b34fb")


async def _raw_backfill(records: int, timing: Timing = "fast") -> float:
    async with VirtualAir(supervision_timeout_s=5.0, timing=timing) as air:
        meter = make_meter(air, model="contour-like", address="F1:00:00:00:01:01")
        add_records(meter, records)
        await meter.power_on()
        _, client_cls = air.backends()
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        got = 0

        def on_data(char: BleakGATTCharacteristic, data: bytearray) -> None:
            nonlocal got
            if char.uuid == RACP:
                done.set_result(bytes(data))
            else:
                got += 1

        t0 = time.perf_counter()
        async with BleakClient(meter.address, backend=client_cls, pair=True, timeout=30) as c:
            for uuid in (*NOTIFIED, RACP):
                await c.start_notify(uuid, on_data)
            await c.write_gatt_char(RACP, b"\x01\x01", response=True)
            await asyncio.wait_for(done, 120)
        elapsed = time.perf_counter() - t0
        assert got >= records, got
        return elapsed


async def _gateway_backfill(
    records: int, workdir: Path, timing: Timing = "fast"
) -> tuple[float, int]:
    async with VirtualAir(supervision_timeout_s=5.0, timing=timing) as air:
        meter = make_meter(air, address="F1:00:00:00:01:02")
        add_records(meter, records)
        await meter.power_on()
        async with hub(air, workdir) as h:
            await h.gateway.discover(0.3)
            t0 = time.perf_counter()
            result = await h.gateway.pair(meter.address, "bench", passkey=PASSKEY)
            elapsed = time.perf_counter() - t0
            return elapsed, result.stored


async def _fleet(n: int, window_s: float, workdir: Path) -> dict[str, float]:
    async with VirtualAir(supervision_timeout_s=5.0) as air:
        model = get_model("omron-like")
        cuffs = [
            BloodPressureCuff(
                air,
                model,
                serial=f"BG{i:06d}",
                address=f"D1:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}",
                advertising_interval_ms=50,
            )
            for i in range(n)
        ]
        for cuff in cuffs:
            await cuff.power_on()
        async with hub(air, workdir, silence_timeout_s=3.0) as h:
            h.gateway.connector._slots = asyncio.Semaphore(n)  # one link per cuff
            seen = {s.address: s for s in await h.gateway.discover(2.0)}
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(h.gateway.pair(c.address, f"p{i}", scan_s=1.0) for i, c in enumerate(cuffs))
            )
            setup_s = time.perf_counter() - t0
            paired = {p.address: p for p in h.registry.all()}
            assert len(paired) == n, [r.outcome for r in results]
            sessions = [
                asyncio.create_task(h.gateway.sync(paired[c.address], seen[c.address]))
                for c in cuffs
            ]
            await asyncio.sleep(1.0)  # sessions subscribed
            cpu0, wall0 = os.times(), time.perf_counter()
            made = 0
            for tick in range(int(window_s)):
                start = time.perf_counter()
                await asyncio.gather(
                    *(c.measure(110 + (tick + i) % 40, 75, 70) for i, c in enumerate(cuffs))
                )
                made += n
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - start)))
            wall = time.perf_counter() - wall0
            cpu1 = os.times()
            await asyncio.gather(*sessions)
            expected = set().union(*(cuff_ids(c) for c in cuffs))
            stored = set(h.outbox.reading_ids())
            return {
                "n": n,
                "setup_s": setup_s,
                "made": made,
                "rate": made / wall,
                "lost": len(expected - stored),
                "extra": len(stored - expected),
                "cpu_pct": 100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall,
            }


async def _worker(spec: str, n: int, workdir: Path) -> None:
    """The gateway alone in this process, on the bench's air over HCI/TCP (see `_fleet_split`)."""
    settings = load_settings(
        None, gateway_id="bench", data_dir=workdir, ble_transport=spec, pace_s=0.0,
        silence_timeout_s=3.0, max_connections=n, connect_timeout_s=20.0, page_enabled=False,
    )  # fmt: skip
    async with open_hub(settings) as hub_:
        gateway = hub_.gateway
        seen = {s.address: s for s in await gateway.discover(3.0)}
        await asyncio.gather(*(gateway.pair(a, "bench") for a in seen))
        paired = gateway.devices()
        sessions = [asyncio.create_task(gateway.sync(p, seen[p.address])) for p in paired]
        await asyncio.sleep(1.0)
        print(f"ready {len(paired)}", flush=True)
        loop = asyncio.get_running_loop()
        cpu0 = os.times()
        await loop.run_in_executor(None, sys.stdin.readline)  # the window runs in the parent
        cpu1 = os.times()
        await asyncio.gather(*sessions)
        cpu_s = cpu1.user + cpu1.system - cpu0.user - cpu0.system
        print(json.dumps({"cpu_s": cpu_s, "ids": hub_.outbox.reading_ids()}), flush=True)


async def _fleet_split(n: int, window_s: float, workdir: Path) -> dict[str, float]:
    """N cuffs in this process; the gateway in its own process, joined over HCI/TCP."""
    async with VirtualAir(supervision_timeout_s=5.0) as air:
        model = get_model("omron-like")
        cuffs = [
            BloodPressureCuff(
                air,
                model,
                serial=f"BS{i:06d}",
                address=f"D2:00:00:00:{i >> 8:02X}:{i & 0xFF:02X}",
                advertising_interval_ms=50,
            )
            for i in range(n)
        ]
        for cuff in cuffs:
            await cuff.power_on()
        endpoint = await open_hci_endpoint(air)
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_gateway", "--worker", endpoint.spec, str(n),
            str(workdir), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[1], limit=64 * 1024 * 1024,
        )  # fmt: skip
        assert worker.stdin is not None and worker.stdout is not None
        try:
            t0 = time.perf_counter()
            ready = (await asyncio.wait_for(worker.stdout.readline(), 600)).decode()
            setup_s = time.perf_counter() - t0
            assert ready.startswith(f"ready {n}"), ready
            wall0 = time.perf_counter()
            made = 0
            for tick in range(int(window_s)):
                start = time.perf_counter()
                await asyncio.gather(
                    *(c.measure(110 + (tick + i) % 40, 75, 70) for i, c in enumerate(cuffs))
                )
                made += n
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - start)))
            wall = time.perf_counter() - wall0
            worker.stdin.write(b"stop\n")
            await worker.stdin.drain()
            report = json.loads((await asyncio.wait_for(worker.stdout.readline(), 120)).decode())
            await worker.wait()
        finally:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
            await endpoint.close()
        expected = set().union(*(cuff_ids(c) for c in cuffs))
        stored = set(report["ids"])
        return {
            "n": n,
            "setup_s": setup_s,
            "made": made,
            "rate": made / wall,
            "lost": len(expected - stored),
            "extra": len(stored - expected),
            "cpu_pct": 100 * report["cpu_s"] / wall,
        }


def main(argv: list[str] | None = None) -> None:
    """Run both benchmarks and append the results to bench/RESULTS.md."""
    parser = common.parser("bench_gateway", __doc__)
    parser.add_argument("--sizes", default="10,50,100")
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--worker", nargs=3, metavar=("SPEC", "N", "DIR"))
    parser.add_argument(
        "--backfill-only", action="store_true", help="skip the fleet runs (minutes each)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.sizes, args.window = 300, "10", 10.0
    if args.worker:
        spec, n, directory = args.worker
        asyncio.run(_worker(spec, int(n), Path(directory)))
        return
    load_start = common.load_1min()
    with tempfile.TemporaryDirectory() as tmp:
        raw_s = asyncio.run(_raw_backfill(args.records))
        gw_s, stored = asyncio.run(_gateway_backfill(args.records, Path(tmp) / "b"))
        print(f"back-fill {args.records}: raw bleak {raw_s:.2f}s, gateway {gw_s:.2f}s ({stored})")
        raw_real_s = asyncio.run(_raw_backfill(args.records, "realistic"))
        gw_real_s, stored_real = asyncio.run(
            _gateway_backfill(args.records, Path(tmp) / "r", "realistic")
        )
        print(f"realistic: raw bleak {raw_real_s:.2f}s, gateway {gw_real_s:.2f}s ({stored_real})")
        rows, split_rows = [], []
        sizes = [] if args.backfill_only else [int(x) for x in args.sizes.split(",")]
        for n in sizes:
            row = asyncio.run(_fleet(n, args.window, Path(tmp) / f"f{n}"))
            print(row, flush=True)
            rows.append(row)
            split = asyncio.run(_fleet_split(n, args.window, Path(tmp) / f"s{n}"))
            print("split", split, flush=True)
            split_rows.append(split)
    lines = [
        f"\n## gateway: back-fill and devices per hub ({common.stamp()})\n",
        f"Machine: {common.machine(load_start)}.\n",
        f"Back-fill of {args.records} glucose records, virtual air, pacing 0:\n",
        "| path | seconds | records/s |",
        "|---|---|---|",
        f"| baseline: plain bleak, subscribe + RACP `01 01` only | {raw_s:.2f} "
        f"| {args.records / raw_s:,.0f} |",
        f"| gateway: bond, DIS, clock, RACP, readings, one outbox commit ({stored} stored) "
        f"| {gw_s:.2f} | {args.records / gw_s:,.0f} |",
        "",
        f"The same on a realistic air (`VirtualAir(timing='realistic')`: the meters' link, "
        f"{METER_TIMING.connection_interval_ms:g} ms connection interval, "
        f"{METER_TIMING.packets_per_event} packets per event, ATT MTU {METER_TIMING.att_mtu}, "
        f"data length {METER_TIMING.data_length}; the model's ceiling is "
        f"{METER_TIMING.records_per_second(15):.0f} one-packet records/s, so "
        f"{args.records / METER_TIMING.records_per_second(15):.1f} s for the records alone):\n",
        "| path | seconds | records/s |",
        "|---|---|---|",
        f"| baseline: plain bleak, subscribe + RACP `01 01` only | {raw_real_s:.2f} "
        f"| {args.records / raw_real_s:,.0f} |",
        f"| gateway ({stored_real} stored) | {gw_real_s:.2f} | {args.records / gw_real_s:,.0f} |",
    ]
    fleet_lines = [
        "",
        f"Cuffs at one full cuff cycle per second each, {args.window:.0f} s window, devices and "
        "gateway in one process (CPU % is both), each indication committed on its own:\n",
        "| cuffs | pair all (s) | readings made | made/s | lost | unexpected | CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    fleet_lines += [
        f"| {r['n']:.0f} | {r['setup_s']:.1f} | {r['made']:.0f} | {r['rate']:.1f} "
        f"| {r['lost']:.0f} | {r['extra']:.0f} | {r['cpu_pct']:.0f} |"
        for r in rows
    ]
    fleet_lines += [
        "",
        "The same with the gateway alone in its own process (`open_hub` on a Bumble HCI/TCP "
        'transport into the bench\'s air); CPU % is the gateway process only; "pair all" includes '
        "the worker's start-up and a 3 s scan:\n",
        "| cuffs | pair all (s) | readings made | made/s | lost | unexpected | gateway CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    fleet_lines += [
        f"| {r['n']:.0f} | {r['setup_s']:.1f} | {r['made']:.0f} | {r['rate']:.1f} "
        f"| {r['lost']:.0f} | {r['extra']:.0f} | {r['cpu_pct']:.0f} |"
        for r in split_rows
    ]
    if sizes:
        lines += fleet_lines
    common.write("\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
