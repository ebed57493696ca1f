"""A plain per-patient reference implementation of the glucose rules (for tests and bench).

Deliberately simple Python over lists of dicts, one patient at a time, in the same row order
as the engine (measured_at, then cursor), so sums come out as the same floats.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import scipy.stats

from alerts.rules.catalog import MG70

DAY_S = 86_400


def group(rows: list[dict[str, float]]) -> dict[str, list[dict[str, float]]]:
    """Rows per patient, each list sorted by (t, cursor)."""
    out: dict[str, list[dict[str, float]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["t"], r["cursor"])):
        out[str(row["patient"])].append(row)
    return out


def glucose_window(rows: list[dict[str, float]], now_s: int, window_d: float) -> dict[str, float]:
    """n, share in 3.9-10.0, share below 3.9 (incl. LO), numeric count, mean, CV."""
    win = [r for r in rows if r["valid"] and now_s - window_d * DAY_S <= r["t"] <= now_s]
    n = len(win)
    nums = [r["v"] for r in win if not math.isnan(r["v"])]
    in_range = sum(1 for r in win if MG70 <= r["v"] <= 10.0)
    below = sum(1 for r in win if r["v"] < MG70 or r["lo"])
    m = len(nums)
    total = 0.0
    for v in nums:
        total += v
    mean = total / m if m else math.nan
    ss = 0.0
    for v in nums:
        ss += (v - mean) * (v - mean)
    cv = math.sqrt(ss / (m - 1)) / mean if m >= 2 and mean != 0 else math.nan
    return {
        "n": n,
        "share_in_range": in_range / n if n else math.nan,
        "share_below": below / n if n else math.nan,
        "m": m,
        "mean": mean,
        "cv": cv,
        "newest": win[-1]["t"] if win else math.nan,
        "days": len({int(r["t"]) // DAY_S for r in win}),
    }


def hysteresis(rows: list[dict[str, float]], trigger: str, clear: str, initial: bool) -> bool:
    """State after the last row: set on trigger, reset on clear, else unchanged."""
    state = initial
    for r in rows:
        if r[trigger]:
            state = True
        elif r[clear]:
            state = False
    return state


def theil_sen(x: list[float], y: list[float]) -> float:
    """scipy's Theil-Sen slope, NaN when no pair has distinct x."""
    if len(set(x)) < 2:
        return math.nan
    with np.errstate(all="ignore"):  # scipy's confidence interval may take sqrt(< 0) on ties
        return float(scipy.stats.theilslopes(y, x).slope)


def trailing(rows: list[dict[str, float]], window_s: int) -> list[dict[str, float]]:
    """Trailing-window stats at every valid row of one patient (rows sorted)."""
    valid = [r for r in rows if r["valid"]]
    out = []
    for i, r in enumerate(valid):
        win = [w for w in valid[: i + 1] if w["t"] >= r["t"] - window_s]
        nums = [w["v"] for w in win if not math.isnan(w["v"])]
        m = len(nums)
        mean = sum(nums) / m if m else math.nan
        var = sum((x - mean) ** 2 for x in nums) / (m - 1) if m >= 2 else math.nan
        out.append({
            "readings": len(win),
            "share_in_range": sum(1 for w in win if MG70 <= w["v"] <= 10.0) / len(win),
            "mean_mmol_l": mean,
            "cv": math.sqrt(var) / mean if m >= 2 and mean != 0 else math.nan,
        })  # fmt: skip
    return out
