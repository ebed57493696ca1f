"""Compiled row selection (numba): the rows a per-reading rule or a home protocol looks at.

A per-reading rule looks at a patient's readings measured (live) or received (late) within the
last `max_age_h`; a home protocol at the cuff readings measured in its last 8 days and 14 hours.
numpy compares whole columns and keeps what matched (a temporary per comparison, over all rows);
here one loop per patient segment does it. Measured times ascend within a segment (rows are
sorted by patient and time), so the window's rows are found scanning back from the segment's
end (`first_after`); received times do not ascend, so the late selection scans the segment up
to the last row measured at or before now. The row filter is applied in the same loop:
`glucose.glucose_ok` (`GLUCOSE_ROWS`), `bp.bp_ok` (`CUFF_ROWS`), and for the protocols also no
cuff measurement-status flag (`PROTOCOL_ROWS`). Rows come out ascending, as `np.flatnonzero`
gives them: a first pass counts each patient's rows, a second writes them at their offsets.
"""

from __future__ import annotations

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
    now_s: int,
    fill: bool,
    first: Any,
    end: Any,
    count: Any,
    out: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    for p in numba.prange(starts.shape[0] - 1):
        after = after_s[p]
        if fill:  # the bounds the counting pass found
            a = first[p]
            e = end[p]
        else:  # rows measured at or before now; live: measured after the window's start too
            e = first_after(measured, starts[p], starts[p + 1], now_s)
            a = starts[p] if by_received else first_after(measured, starts[p], e, after)
            first[p] = a
            end[p] = e
        k = count[p] if fill else 0
        for i in range(a, e):
            if by_received and (received[i] <= after or received[i] > now_s):
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

    A scan back from hi: it reads the rows after x, the recent ones the caller reads next
    anyway, one cache line after the other, where a binary search's probes wait on memory one
    after the other.
    """
    j = hi
    while j > lo and t[j - 1] > x:
        j -= 1
    return j


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
    starts: IntArray | None = None,
) -> IntArray:
    """Rows (ascending) passing the filter `which` whose measured (or `by_received`, received)
    time lies in (after_s, now_s], measured at or before now.

    `after_s` is one time for everyone or one per patient; `starts` are the segment offsets
    (`window_pass.segment_starts`) when the caller has them.
    """
    n_pat = cols.n_patients
    if starts is None:
        starts = segment_starts(cols)
    after = np.ascontiguousarray(np.broadcast_to(np.asarray(after_s, dtype=np.float64), n_pat))
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
            cols.diastolic_mmhg, cols.bp_flagged, which, after, int(now_s), fill, first, end,
            counts, out,
        )  # fmt: skip

    run(False, count, np.zeros(0, dtype=np.int64))
    offsets = np.zeros(n_pat + 1, dtype=np.int64)
    np.cumsum(count[:n_pat], out=offsets[1:])
    rows = np.empty(int(offsets[-1]), dtype=np.int64)
    run(True, offsets, rows)
    return rows
