"""Compiled row selection (numba): the rows a per-reading rule or a home protocol looks at.

A per-reading rule looks at a patient's readings measured (live) or received (late) within the
last `max_age_h`; a home protocol at the cuff readings measured in its last 8 days and 14 hours.
numpy compares whole columns and keeps what matched (a temporary per comparison, over all rows);
here one loop per patient segment does it. Measured times ascend within a segment (rows are
sorted by patient and time), so the window's rows are found searching back from the segment's
end (`first_after`); received times do not ascend, so the late selection scans the rows measured
from the earliest a late reading can have been measured up to now. The row filter is applied in
the same loop: `glucose.glucose_ok` (`GLUCOSE_ROWS`), `bp.bp_ok` (`CUFF_ROWS`), and for the
protocols also no cuff measurement-status flag (`PROTOCOL_ROWS`). Rows come out ascending, as
`np.flatnonzero` gives them: a first pass counts each patient's rows, a second writes them at
their offsets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numba
import numpy as np

from alerts.rules.columns import KindCode, ReadingColumns, SpecialCode
from alerts.rules.result import FloatArray, IntArray
from alerts.rules.window_pass import PARALLEL_ROWS, build_kernel, segment_starts

GLUCOSE_ROWS: Final = 0
CUFF_ROWS: Final = 1
PROTOCOL_ROWS: Final = 2
_GLUCOSE = int(KindCode.GLUCOSE)
_BLOOD_PRESSURE = int(KindCode.BLOOD_PRESSURE)
_INVALID = int(SpecialCode.INVALID)
DAY_S = 86_400
HOUR_S = 3_600


def _rows_body(  # noqa: PLR0917 (a compiled kernel takes plain arrays)
    starts: Any,
    by_received: bool,
    measured: Any,
    received: Any,
    kind: Any,
    control: Any,
    implausible: Any,
    special: Any,
    systolic: Any,
    diastolic: Any,
    flagged: Any,
    which: int,
    after_s: Any,
    min_delay_s: Any,
    measured_after_s: Any,
    now_s: int,
    fill: bool,
    first: Any,
    end: Any,
    count: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    for p in numba.prange(starts.shape[0] - 1):
        after = after_s[p]
        min_delay = min_delay_s[p]
        if fill:  # the bounds the counting pass found, for the patients with rows
            if count[p + 1] == count[p]:
                continue
            a = first[p]
            e = end[p]
        else:  # rows measured at or before now; live: measured after the window's start too
            e = first_after(measured, starts[p], starts[p + 1], now_s)
            a = first_after(measured, starts[p], e, measured_after_s[p] if by_received else after)
            first[p] = a
            end[p] = e
        k = count[p] if fill else 0
        for i in range(a, e):
            if by_received and (
                received[i] <= after
                or received[i] > now_s
                or received[i] - measured[i] <= min_delay
            ):
                continue
            if implausible[i]:
                continue
            if which == GLUCOSE_ROWS:
                if kind[i] != _GLUCOSE or control[i] or special[i] == _INVALID:
                    continue
            elif not cuff_ok(i, kind, systolic, diastolic) or (
                which == PROTOCOL_ROWS and flagged[i]
            ):
                continue
            if fill:
                out[k] = i
            k += 1
        if not fill:
            count[p] = k


@numba.njit(cache=True, nogil=True, inline="always")
def first_after(t: Any, lo: int, hi: int, x: float) -> int:  # pragma: no cover - compiled
    """First row of [lo, hi) with t > x (t ascending there), hi if none.

    A galloping search back from hi (steps of 1, 2, 4, ... then a binary search): its cost
    grows with the log of the rows after x, the recent ones, so finding the few rows after
    now or the last day costs a probe or two where a binary search over the segment costs
    eight, each waiting on memory.
    """
    j = hi  # t[j:hi] > x
    step = 1
    while j > lo:
        k = max(j - step, lo)
        if t[k] <= x:
            lo = k + 1
            break
        j = k
        step *= 2
    while lo < j:
        mid = (lo + j) // 2
        if t[mid] > x:
            j = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True, nogil=True, inline="always")
def cuff_ok(i: int, kind: Any, systolic: Any, diastolic: Any) -> bool:  # pragma: no cover
    """A cuff reading with both pressures (`bp.bp_ok` without the time and plausibility)."""
    return bool(
        kind[i] == _BLOOD_PRESSURE and np.isfinite(systolic[i]) and np.isfinite(diastolic[i])
    )


_rows_parallel = build_kernel(_rows_body, parallel=True)
_rows_serial = build_kernel(_rows_body, parallel=False)


def recent_rows(
    cols: ReadingColumns,
    now_s: int,
    after_s: FloatArray | float,
    which: int,
    *,
    by_received: bool = False,
    min_delay_s: FloatArray | float = -np.inf,
    measured_after_s: FloatArray | float = -np.inf,
    starts: IntArray | None = None,
) -> IntArray:
    """Rows (ascending) passing the filter `which` whose measured (or `by_received`, received)
    time lies in (after_s, now_s], measured at or before now; `by_received`, only those
    received more than `min_delay_s` after they were measured (the late ones) and measured
    after `measured_after_s` (the earliest a late reading the rule can keep was measured).

    `after_s`, `min_delay_s` and `measured_after_s` are one value for everyone or one per
    patient; `starts` are the segment offsets (`window_pass.segment_starts`) when the caller
    has them.
    """
    n_pat = cols.n_patients
    if starts is None:
        starts = segment_starts(cols)

    def per_patient(value: FloatArray | float) -> FloatArray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=np.float64), n_pat))

    after = per_patient(after_s)
    min_delay = per_patient(min_delay_s)
    measured_after = per_patient(measured_after_s)
    count = np.zeros(n_pat + 1, dtype=np.int64)
    first = np.empty(n_pat, dtype=np.int64)
    end = np.empty(n_pat, dtype=np.int64)
    if not n_pat or not len(cols):
        return np.zeros(0, dtype=np.int64)
    kernel = _rows_parallel if len(cols) >= PARALLEL_ROWS else _rows_serial

    def run(fill: bool, counts: IntArray, out: IntArray) -> None:
        kernel(
            starts, by_received, cols.measured_at_s, cols.received_at_s, cols.kind,
            cols.control_solution, cols.implausible, cols.glucose_special, cols.systolic_mmhg,
            cols.diastolic_mmhg, cols.bp_flagged, which, after, min_delay, measured_after,
            int(now_s), fill, first, end, counts, out,
        )  # fmt: skip

    run(False, count, np.zeros(0, dtype=np.int64))
    offsets = np.zeros(n_pat + 1, dtype=np.int64)
    np.cumsum(count[:n_pat], out=offsets[1:])
    rows = np.empty(int(offsets[-1]), dtype=np.int64)
    run(True, offsets, rows)
    return rows


def fresh_rows(
    cols: ReadingColumns,
    now_s: int,
    which: int,
    params: Mapping[str, FloatArray],
    *,
    late: bool,
    starts: IntArray | None = None,
) -> IntArray:
    """The rows a per-reading rule with parameters `params` looks at: passing `which` and
    measured within the last `max_age_h` (live), or (`late`) received within it and more than
    `max_age_h` after they were measured, at most `late_max_age_d` before (`late.late_rows`
    keeps no other row: leaving the others out here changes no result)."""
    max_age_s = params["max_age_h"] * HOUR_S
    if not late:
        return recent_rows(cols, now_s, now_s - max_age_s, which, starts=starts)
    # A late reading the rule keeps was received after now - max_age and measured at most
    # late_max_age_d before it was received; one second of slack for the float bound.
    earliest_s = now_s - max_age_s - params["late_max_age_d"] * DAY_S - 1.0
    return recent_rows(
        cols, now_s, now_s - max_age_s, which, by_received=True, min_delay_s=max_age_s,
        measured_after_s=earliest_s, starts=starts,
    )  # fmt: skip
