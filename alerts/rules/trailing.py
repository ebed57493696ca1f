"""Trailing-window statistics at every row, compiled (numba): one pass per patient segment.

Rows are sorted by (patient, time), so each row's window [t - window_s, t] is a run of the same
patient's rows that ends at the row itself; a second index follows its start. Running sums move
by one row at each step (add the row, drop the rows that left the window): linear in the rows,
where a binary search per row (numpy's `searchsorted` on the composite key) is n log n with a
cache miss per step. Values are centred on each patient's mean before they are summed, so the
sums stay small and their differences exact to about 1e-12 of the spread; a window whose values
are all the same has a CV of exactly 0 (a constant run is counted, not inferred from the sums,
whose rounding would leave the square root of a few ulps). Patients are spread
over the cores (`prange`; numba's threads, as many as the machine has).

Compiled on first use and cached next to this file (`cache=True`): a process that finds the
cache loads it in well under a second.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@numba.njit(parallel=True, cache=True, nogil=True)
def _trailing(  # noqa: PLR0917 (a compiled kernel takes plain arrays)
    starts: Any,
    t: Any,
    v: Any,
    numeric: Any,
    low: float,
    high: float,
    window_s: int,
    n_out: Any,
    share_out: Any,
    mean_out: Any,
    cv_out: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    for s in numba.prange(starts.shape[0] - 1):
        lo = starts[s]
        hi = starts[s + 1]
        if hi <= lo:
            continue
        total = 0.0
        count = 0
        for i in range(lo, hi):
            if numeric[i]:
                total += v[i]
                count += 1
        centre = total / count if count else 0.0
        j = lo
        n = 0
        m = 0
        inside = 0
        s1 = 0.0
        s2 = 0.0
        same = 0  # the newest numeric values equal to the last one (a constant run)
        last = np.nan
        for i in range(lo, hi):
            n += 1
            if numeric[i]:
                d = v[i] - centre
                m += 1
                s1 += d
                s2 += d * d
                if low <= v[i] <= high:
                    inside += 1
                same = same + 1 if v[i] == last else 1
                last = v[i]
            limit = t[i] - window_s
            while t[j] < limit:
                n -= 1
                if numeric[j]:
                    d = v[j] - centre
                    m -= 1
                    s1 -= d
                    s2 -= d * d
                    if low <= v[j] <= high:
                        inside -= 1
                j += 1
            n_out[i] = n
            share_out[i] = inside / n
            if m == 0:
                mean_out[i] = np.nan
                cv_out[i] = np.nan
                continue
            shift = s1 / m
            mean = shift + centre
            mean_out[i] = mean
            if m < 2 or mean == 0.0:
                cv_out[i] = np.nan
            elif same >= m:
                # Every value in the window is the same: no spread, exactly (the running sums'
                # rounding, a few ulps of the patient's spread, would leave a square root of
                # it, about 1e-8 .. 1e-6, where the SD is zero).
                cv_out[i] = 0.0
            else:
                var = max(s2 - s1 * shift, 0.0) / (m - 1)
                cv_out[i] = np.sqrt(var) / mean


def trailing_window(
    patient: IntArray,
    t: IntArray,
    v: FloatArray,
    numeric: BoolArray,
    *,
    n_patients: int,
    window_s: int,
    low: float,
    high: float,
) -> dict[str, FloatArray]:
    """Per row: readings in its trailing window, share of numeric values in [low, high] among
    them, and mean and CV (sample SD / mean, NaN under two values or at a zero mean) of the
    numeric values. Rows sorted by (patient, t); `v` is ignored where not `numeric`."""
    size = patient.shape[0]
    starts = np.searchsorted(patient, np.arange(n_patients + 1, dtype=np.int64))
    out = {name: np.empty(size) for name in ("readings", "share_in_range", "mean_mmol_l", "cv")}
    if size:
        _trailing(
            starts.astype(np.int64), np.ascontiguousarray(t, dtype=np.int64),
            np.ascontiguousarray(v, dtype=np.float64), np.ascontiguousarray(numeric),
            float(low), float(high), int(window_s), out["readings"], out["share_in_range"],
            out["mean_mmol_l"], out["cv"],
        )  # fmt: skip
    return out
