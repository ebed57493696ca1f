"""A continuous-runner step at 100,000 and 1,000,000 patients x 30 days: time and peak memory.

    python -m bench.bench_step [--sizes 100000,1000000] [--new 1000] [--quick]

What `alerts.engine.runner.Runner` does between full steps, in memory (no database): add a
batch of `--new` readings (one each from as many patients) to the window, gather those
patients' rows within the rules' horizon and evaluate every rule but adherence on them
(`alerts.engine.tiered.TieredWindow`: the batch goes to the tail, the patients' rows are found
through segment offsets; `alerts.engine.scoped.evaluate_scoped`: each rule over the rows it
reads). Baseline in the same run: the previous step, which merged the batch
into the whole window (one `np.insert` per column), then selected the patients' rows with a
pass over the window. Each size runs in its own process, so its peak resident memory (the
window itself, the offsets and the step's temporaries) is its own; the synthetic window of the
1,000,000-patient run is generated in chunks, and its columns that are constant here (pulse,
flags, reading ids) are broadcast views that take no memory. Times are the best of 5 steps.
`--quick`: 100,000 patients only (about a minute).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np

from alerts.engine.evaluate import evaluate_all, horizon_s, no_prior_state
from alerts.engine.scoped import evaluate_scoped
from alerts.engine.tiered import TieredWindow
from alerts.engine.window import merge
from alerts.rules.catalog import RULES
from alerts.rules.columns import NO_OFFSET, KindCode, ReadingColumns, build_columns
from bench import common
from bench.bench_rules import DAY, DAYS, NOW_S, SLOTS

CHUNK = 50_000  # patients generated at a time


def lean_synthetic(n_patients: int, seed: int = 7) -> ReadingColumns:
    """The bench_rules population (glucose 4/day, BP 2/day, 30 days), generated in chunks of
    patients straight into the final arrays."""
    rng = np.random.default_rng(seed)
    per = DAYS * len(SLOTS)
    n = n_patients * per
    cols: dict[str, Any] = {
        "patient": np.empty(n, np.int64), "measured_at_s": np.empty(n, np.int64),
        "kind": np.empty(n, np.int8), "glucose_mmol_l": np.empty(n, np.float64),
        "glucose_special": np.zeros(n, np.int8), "systolic_mmhg": np.empty(n, np.float64),
        "diastolic_mmhg": np.empty(n, np.float64), "meal": np.empty(n, np.int8),
        "cursor": np.arange(n, dtype=np.int64),
    }  # fmt: skip
    offsets = np.array([s[0] for s in SLOTS])
    kinds = np.array([s[1] for s in SLOTS], dtype=np.int8)
    meals = np.array([s[2] for s in SLOTS], dtype=np.int8)
    day0 = (NOW_S // DAY - DAYS + 1) * DAY
    for first in range(0, n_patients, CHUNK):
        count = min(CHUNK, n_patients - first)
        lo, hi = first * per, (first + count) * per
        patient = np.repeat(np.arange(first, first + count, dtype=np.int64), per)
        day = np.tile(np.repeat(np.arange(DAYS), len(SLOTS)), count)
        slot = np.tile(np.arange(len(SLOTS)), count * DAYS)
        cols["patient"][lo:hi] = patient
        cols["measured_at_s"][lo:hi] = (
            day0 + day * DAY + offsets[slot] + rng.integers(0, 1200, hi - lo)
        )
        is_g = kinds[slot] == KindCode.GLUCOSE
        cols["kind"][lo:hi] = kinds[slot]
        cols["meal"][lo:hi] = meals[slot]
        local = patient - first
        g = np.clip(
            rng.normal(rng.normal(8.0, 2.0, count)[local], rng.uniform(0.8, 3.5, count)[local]),
            1.2,
            33.0,
        )
        cols["glucose_mmol_l"][lo:hi] = np.where(is_g, g, np.nan)
        s_mean = rng.normal(132.0, 14.0, count)[local]
        cols["systolic_mmhg"][lo:hi] = np.where(is_g, np.nan, np.round(rng.normal(s_mean, 9.0)))
        cols["diastolic_mmhg"][lo:hi] = np.where(
            is_g, np.nan, np.round(rng.normal(s_mean * 0.6, 6.0))
        )
        # Plausible cuff readings only (pulse pressure >= 10 mmHg), as in bench_rules.
        np.minimum(
            cols["diastolic_mmhg"][lo:hi],
            cols["systolic_mmhg"][lo:hi] - 10.0,
            out=cols["diastolic_mmhg"][lo:hi],
        )
    nan = np.broadcast_to(np.float64(np.nan), (n,))
    false = np.broadcast_to(np.False_, (n,))
    none = np.broadcast_to(np.array(None, dtype=object), (n,))
    return ReadingColumns(
        tuple(f"p{i:07d}" for i in range(n_patients)), cols["patient"], cols["measured_at_s"],
        cols["kind"], cols["glucose_mmol_l"], cols["glucose_special"], cols["systolic_mmhg"],
        cols["diastolic_mmhg"], nan, cols["meal"], false, false, false, none, cols["cursor"],
        cols["measured_at_s"], np.broadcast_to(np.int16(NO_OFFSET), (n,)), none, false,
        nan, nan, nan, nan,  # the wearables' value columns
    )  # fmt: skip


def _batch(cols: ReadingColumns, n_new: int, k: int) -> ReadingColumns:
    rng = np.random.default_rng(100 + k)
    patients = rng.choice(cols.n_patients, n_new, replace=False)
    first = len(cols) + k * n_new
    return build_columns(
        [cols.patient_ids[p] for p in patients], np.full(n_new, NOW_S - 60),
        np.full(n_new, KindCode.GLUCOSE), glucose_mmol_l=rng.normal(8.0, 2.0, n_new),
        reading_ref=[f"new-{first + i}" for i in range(n_new)],
        cursor=np.arange(first, first + n_new),
    )  # fmt: skip


def measure(n_patients: int, n_new: int, baseline: bool) -> dict[str, float]:
    """One size, in this process; returns the figures (and peak RSS)."""
    t0 = time.perf_counter()
    cols = lean_synthetic(n_patients)
    built_s = time.perf_counter() - t0
    rules = [r for r in RULES if r.rule_id != "adherence.no_readings"]
    since = NOW_S - horizon_s(rules)
    start = NOW_S - 35 * DAY
    t0 = time.perf_counter()
    window = TieredWindow(cols)
    offsets_s = time.perf_counter() - t0
    best: dict[str, float] = {}
    for k in range(5):
        new = _batch(cols, n_new, k)
        window.tail = None
        c0, t0 = time.process_time(), time.perf_counter()
        window.add(new, start_s=start)
        t1 = time.perf_counter()
        ids = sorted(set(new.patient_ids))
        sub = window.patients(ids, since_s=since, until_s=NOW_S)
        sub = sub.take(sub.measured_at_s <= NOW_S)  # as the runner does: nothing left to drop
        t2 = time.perf_counter()
        evaluate_scoped(sub, NOW_S, prior=no_prior_state(), rules=rules)
        t3 = time.perf_counter()
        cpu = time.process_time() - c0
        if t3 - t0 < best.get("step_s", float("inf")):
            best.update(step_s=t3 - t0, add_s=t1 - t0, gather_s=t2 - t1, evaluate_s=t3 - t2,
                        cpu_s=cpu, rows=float(len(sub)))  # fmt: skip
    if baseline:
        old = float("inf")
        for k in range(3):
            new = _batch(cols, n_new, k)
            t0 = time.perf_counter()
            merged = merge(cols, new, start_s=start)
            now_rows = merged.take(merged.measured_at_s <= NOW_S)
            hot = np.unique(now_rows.patient[now_rows.cursor >= len(cols)])
            sub = now_rows.take(np.isin(now_rows.patient, hot, kind="table"))
            evaluate_all(sub, NOW_S, prior=no_prior_state(), rules=rules)
            old = min(old, time.perf_counter() - t0)
            del merged, now_rows, sub
        best["old_step_s"] = old
    best.update(
        patients=float(n_patients), readings=float(len(cols)), built_s=built_s,
        offsets_s=offsets_s,
        peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    )  # fmt: skip
    return best


def main(argv: list[str] | None = None) -> None:
    parser = common.parser("bench_step", __doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in this process
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.new, args.baseline)), flush=True)
        return
    sizes = [100_000] if args.quick else [int(x) for x in args.sizes.split(",")]
    load_start = common.load_1min()
    rows = []
    for size in sizes:
        argv_one = [sys.executable, "-m", "bench.bench_step", "--one", str(size), "--new",
                    str(args.new), *(["--baseline"] if size <= 100_000 else [])]  # fmt: skip
        out = subprocess.run(argv_one, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = [
        f"## alerts: one continuous step, {args.new:,} new readings ({common.stamp()})",
        "",
        f"Machine: {common.machine(load_start)}. In memory, no database; "
        f"`python -m bench.bench_step --sizes {','.join(str(s) for s in sizes)}`. Best of 5 "
        "steps; peak = the process's peak resident memory (window included).",
        "",
        "| patients | window readings | step ms (CPU ms) | add / gather / evaluate ms "
        "| rows evaluated | baseline: merge into the window, ms | peak RSS GiB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        old = f"{1000 * r['old_step_s']:,.0f}" if "old_step_s" in r else "- (not run)"
        lines.append(
            f"| {r['patients']:,.0f} | {r['readings']:,.0f} | {1000 * r['step_s']:.1f} "
            f"({1000 * r['cpu_s']:.1f}) | {1000 * r['add_s']:.1f} / {1000 * r['gather_s']:.1f} "
            f"/ {1000 * r['evaluate_s']:.1f} | {r['rows']:,.0f} | {old} | "
            f"{r['peak_rss_gib']:.1f} |"
        )
    lines += [
        "",
        "Aim: <= 10 ms per 1,000 new readings at 100,000 patients. Window set-up per "
        "compaction (sort key and segment offsets): "
        + ", ".join(f"{r['offsets_s']:.2f} s at {r['patients']:,.0f}" for r in rows)
        + ".",
    ]
    common.write("\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
