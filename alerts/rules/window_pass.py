"""Compiled per-patient passes (numba): the glucose window rules' statistics, plausibility flags.

`glucose.tir_14d`, `glucose.tbr_14d`, `glucose.cv_14d` and `glucose.fasting_mean_7d` each look
at a patient's glucose readings of the last `window_d` days. Rows are sorted by (patient,
time), so a patient's window is the tail of their segment: a binary search finds its first
row and one loop over it counts the readings, the distinct UTC days, the readings in range and
below range, and sums the numeric values (mean and CV in two passes over the window, like the
numpy reference: the same additions in the same row order, so the same floats). No per-rule
temporaries over all rows: the only full-length output is the evidence mask, written for the
window's rows. Patients are spread over the cores (`prange`) when there are many rows.

The row filter is `glucose.glucose_rows` (patient glucose results at or before now, no control
solution, nothing implausible, no NaN/NRes) and, for the fasting mean, a fasting meal tag and a
numeric value. `implausible_flags` is `alerts.rules.plausibility`'s flag pass: every limit
compared in one loop over each patient's rows (with that patient's limits), where numpy makes a
temporary per comparison. Compiled on first use and cached next to this file.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from alerts.rules.columns import KindCode, MealCode, ReadingColumns, SpecialCode

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_GLUCOSE = int(KindCode.GLUCOSE)
_NONE = int(SpecialCode.NONE)
_LO = int(SpecialCode.LO)
_INVALID = int(SpecialCode.INVALID)
_FASTING = int(MealCode.FASTING)
DAY_S = 86_400


def _pass_body(  # noqa: PLR0917 (a compiled kernel takes plain arrays)
    starts: Any,
    t: Any,
    kind: Any,
    control: Any,
    implausible: Any,
    special: Any,
    v: Any,
    meal: Any,
    now_s: int,
    from_s: Any,
    low: Any,
    high: Any,
    fasting: bool,
    count: Any,
    newest: Any,
    days: Any,
    in_range: Any,
    below: Any,
    numeric: Any,
    mean: Any,
    cv: Any,
    evidence: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    for p in numba.prange(starts.shape[0] - 1):
        lo = starts[p]
        hi = starts[p + 1]
        first = from_s[p]
        # First row of the segment measured at or after the window's start (binary search).
        a = lo
        b = hi
        while a < b:
            mid = (a + b) // 2
            if t[mid] < first:
                a = mid + 1
            else:
                b = mid
        n = 0
        last = -1
        n_days = 0
        day = -1
        inside = 0
        under = 0
        m = 0
        total = 0.0
        for i in range(a, hi):
            ti = t[i]
            if ti > now_s:
                break
            if (
                kind[i] != _GLUCOSE
                or control[i]
                or implausible[i]
                or special[i] == _INVALID
                or ti < first
            ):
                continue
            if fasting and (meal[i] != _FASTING or special[i] != _NONE):
                continue
            evidence[i] = True
            n += 1
            last = i
            d = ti // 86_400
            if d != day:
                n_days += 1
                day = d
            x = v[i]
            if low[p] <= x <= high[p]:
                inside += 1
            if x < low[p] or special[i] == _LO:
                under += 1
            if special[i] == _NONE:
                m += 1
                total += x
        count[p] = n
        newest[p] = last
        days[p] = n_days
        in_range[p] = inside
        below[p] = under
        numeric[p] = m
        if m == 0:
            mean[p] = np.nan
            cv[p] = np.nan
            continue
        centre = total / m
        mean[p] = centre
        if m < 2 or centre == 0.0:
            cv[p] = np.nan
            continue
        ss = 0.0
        for i in range(a, last + 1):
            if evidence[i] and special[i] == _NONE:
                dev = v[i] - centre
                ss += dev * dev
        cv[p] = np.sqrt(ss / (m - 1)) / centre


def build_kernel(body: Any, parallel: bool) -> Any:
    """`body` compiled, over all cores or not. Numba's cache keys a kernel by its qualified name
    and bytecode, not by its options: each build gets a name of its own."""
    suffix = "_parallel" if parallel else "_serial"
    func = types.FunctionType(
        body.__code__, body.__globals__, body.__name__ + suffix, body.__defaults__
    )
    func.__qualname__ = body.__qualname__ + suffix
    return numba.njit(parallel=parallel, cache=True, nogil=True)(func)


# Two builds of each kernel: over all cores for large inputs, in the calling thread for small
# ones (a continuous step's few thousand rows), where waking numba's worker threads costs more
# than the work, and much more on a loaded machine.
_pass_parallel = build_kernel(_pass_body, parallel=True)
_pass_serial = build_kernel(_pass_body, parallel=False)
PARALLEL_ROWS = 1_000_000  # rows from which a pass runs on all cores


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Per patient, over the window's glucose rows: `count`, `newest` (row, -1 if none),
    distinct UTC `days`, readings `in_range` ([low, high]) and `below` (< low, or meter LO),
    `numeric` readings and their `mean` and `cv` (sample SD / mean; NaN under two values or at
    a zero mean); `evidence` marks the window's rows."""

    count: IntArray
    newest: IntArray
    days: IntArray
    in_range: IntArray
    below: IntArray
    numeric: IntArray
    mean: FloatArray
    cv: FloatArray
    evidence: BoolArray


@numba.njit(cache=True, nogil=True)
def _starts(patient: Any, out: Any) -> None:  # pragma: no cover - compiled; tested
    """out[c] = first row with patient >= c (patient ascending): a galloping search forward
    from the previous code's start, so each probe lands near the last (a binary search over
    all rows per code waits on a cache miss at most of its probes)."""
    n = patient.shape[0]
    j = 0
    for c in range(out.shape[0]):
        step = 1
        while j + step <= n and patient[j + step - 1] < c:
            j += step
            step *= 2
        hi = min(j + step, n)  # patient[j - 1] < c (or j == 0) and patient[hi - 1] >= c or hi == n
        while j < hi:
            mid = (j + hi) // 2
            if patient[mid] < c:
                j = mid + 1
            else:
                hi = mid
        out[c] = j


def segment_starts(cols: ReadingColumns) -> IntArray:
    """First row of each patient's segment, and the row count at the end (n_patients + 1):
    `np.searchsorted(cols.patient, np.arange(n_patients + 1))`."""
    starts = np.empty(cols.n_patients + 1, dtype=np.int64)
    _starts(cols.patient, starts)
    return starts


def window_stats(
    cols: ReadingColumns,
    now_s: int,
    *,
    from_s: FloatArray | float,
    low: FloatArray | float,
    high: FloatArray | float,
    fasting: bool = False,
    starts: IntArray | None = None,
) -> WindowStats:
    """The statistics of each patient's glucose readings measured in [from_s, now_s].

    `from_s`, `low` and `high` are one value for everyone or one per patient; `starts` are the
    segment offsets (`segment_starts`) when the caller has them.
    """
    n_pat = cols.n_patients
    if starts is None:
        starts = segment_starts(cols)

    def per_patient(value: FloatArray | float) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=np.float64), n_pat))

    def counts() -> IntArray:
        return np.empty(n_pat, dtype=np.int64)

    out = WindowStats(
        counts(),
        counts(),
        counts(),
        counts(),
        counts(),
        counts(),
        mean=np.empty(n_pat),
        cv=np.empty(n_pat),
        evidence=np.zeros(len(cols), dtype=np.bool_),
    )
    if n_pat:
        kernel = _pass_parallel if len(cols) >= PARALLEL_ROWS else _pass_serial
        kernel(
            starts, cols.measured_at_s, cols.kind, cols.control_solution, cols.implausible,
            cols.glucose_special, cols.glucose_mmol_l, cols.meal, int(now_s), per_patient(from_s),
            per_patient(low), per_patient(high), fasting, out.count, out.newest, out.days,
            out.in_range, out.below, out.numeric, out.mean, out.cv, out.evidence,
        )  # fmt: skip
    return out


@dataclass(frozen=True, slots=True)
class _Shared:
    cols: ReadingColumns
    now_s: int
    from_s: FloatArray
    low: FloatArray
    high: FloatArray
    fasting: bool
    stats: WindowStats


def shared_window_stats(
    cols: ReadingColumns,
    now_s: int,
    *,
    from_s: FloatArray | float,
    low: FloatArray | float | None,
    high: FloatArray | float | None,
    fasting: bool = False,
    starts: IntArray | None = None,
    scratch: dict[str, object] | None = None,
) -> WindowStats:
    """`window_stats`, shared between the rules of one evaluation through `scratch`.

    A rule that does not read the readings in range passes `high=None`, one that reads neither
    those nor the readings below range `low=None`: a pass made for another rule with the same
    window (and the same thresholds where they matter) serves it. `glucose.tir_14d`,
    `glucose.tbr_14d` and `glucose.cv_14d` with their default parameters share one pass.
    """
    n_pat = cols.n_patients

    def per_patient(value: FloatArray | float) -> FloatArray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), n_pat)

    window = per_patient(from_s)
    passes: list[_Shared] = []
    if scratch is not None:
        passes = scratch.setdefault("glucose_window_passes", [])  # type: ignore[assignment]
        for done in passes:
            if (
                done.cols is cols
                and done.now_s == now_s
                and done.fasting == fasting
                and np.array_equal(done.from_s, window)
                and (low is None or np.array_equal(done.low, per_patient(low)))
                and (high is None or np.array_equal(done.high, per_patient(high)))
            ):
                return done.stats
    lows = per_patient(-np.inf if low is None else low)
    highs = per_patient(np.inf if high is None else high)
    stats = window_stats(
        cols, now_s, from_s=window, low=lows, high=highs, fasting=fasting, starts=starts
    )
    if scratch is not None:
        passes.append(_Shared(cols, now_s, window, lows, highs, fasting, stats))
    return stats


def _implausible_body(  # noqa: PLR0917 (a compiled kernel takes plain arrays)
    starts: Any,
    control: Any,
    below_cols: Any,
    below_limits: Any,
    above_cols: Any,
    above_limits: Any,
    sys_: Any,
    dia: Any,
    min_pulse_pressure: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    for p in numba.prange(starts.shape[0] - 1):
        for i in range(starts[p], starts[p + 1]):
            if control[i]:
                out[i] = False
                continue
            flag = dia[i] >= sys_[i] or sys_[i] - dia[i] < min_pulse_pressure[p]
            for c in range(len(below_cols)):
                if below_cols[c][i] < below_limits[c, p]:
                    flag = True
            for c in range(len(above_cols)):
                if above_cols[c][i] > above_limits[c, p]:
                    flag = True
            out[i] = flag


_implausible_parallel = build_kernel(_implausible_body, parallel=True)
_implausible_serial = build_kernel(_implausible_body, parallel=False)


def implausible_flags(
    starts: IntArray,
    control: BoolArray,
    *,
    below: list[tuple[FloatArray, FloatArray]],
    above: list[tuple[FloatArray, FloatArray]],
    systolic: FloatArray,
    diastolic: FloatArray,
    min_pulse_pressure: FloatArray,
) -> BoolArray:
    """Rows flagged implausible: a value below its lower or above its upper limit (`below`,
    `above`: (column, per-patient limit) pairs), diastolic at or above systolic, or a pulse
    pressure under the patient's minimum; never a control-solution result. NaN compares
    false, as in numpy."""
    out = np.empty(control.shape[0], dtype=np.bool_)
    if out.shape[0]:
        kernel = _implausible_parallel if out.shape[0] >= PARALLEL_ROWS else _implausible_serial
        kernel(
            starts, control, tuple(c for c, _ in below), np.stack([lim for _, lim in below]),
            tuple(c for c, _ in above), np.stack([lim for _, lim in above]),
            systolic, diastolic, min_pulse_pressure, out,
        )  # fmt: skip
    return out
