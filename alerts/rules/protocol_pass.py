"""Compiled home blood-pressure protocol pass (numba): one loop per patient over the cuff
readings measured in the last 8 days and 14 hours (which cover 7 local days at any offset).

Measured times ascend within a patient's segment, so a search back from its end finds them; the
loop keeps the plausible cuff readings with both pressures and no measurement-status flag (what
`bp.bp_ok` and the protocols' flag filter select) and works out for each its local time (the
care plan's fixed offset, else the offset written with the reading, else the patient's time
zone, else UTC: `alerts.rules.localtime`), local day and hour. A reading counts when its day is
one of the last 7 local days (today in the patient's local time at now and the 6 before) and,
for a protocol with time slots, its hour lies in one of them; "day 1" (the day of the first
reading counted so far) is dropped when the protocol says so. Per patient: the readings counted,
their distinct local days (counted where the day changes from one counted reading to the next,
as `segments.distinct_days`), the mean systolic and diastolic pressures (summed in row order, as
`np.bincount` sums them: the same floats) and the newest counted row; the counted rows are
marked in `evidence`. No temporaries over the rows, only the evidence mask.

When some patient has a time zone, the offsets are looked up in numpy first
(`LocalClock.offsets_s`, for the candidate rows `row_pass.recent_rows` selects) and the loop
runs over those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from alerts.rules.columns import NO_OFFSET, ReadingColumns
from alerts.rules.localtime import LocalClock
from alerts.rules.result import BoolArray, FloatArray, IntArray
from alerts.rules.row_pass import PROTOCOL_ROWS, cuff_ok, first_after, recent_rows
from alerts.rules.window_pass import PARALLEL_ROWS, build_kernel, segment_starts

DAY_S = 86_400
HOUR_S = 3_600
HISTORY_S = 8 * DAY_S + 14 * HOUR_S  # 8 days and 14 h cover 7 local days at any UTC offset


def _protocol_body(  # noqa: PLR0917 (a compiled kernel takes plain arrays)
    starts: Any,
    listed: bool,
    cand: Any,
    t: Any,
    kind: Any,
    implausible: Any,
    flagged: Any,
    systolic: Any,
    diastolic: Any,
    row_offset_min: Any,
    offsets_s: Any,
    override_min: Any,
    zone_now_s: Any,
    from_s: int,
    now_s: int,
    slots: Any,
    drop_first_day: bool,
    count: Any,
    days: Any,
    mean_sys: Any,
    mean_dia: Any,
    newest: Any,
    evidence: Any,
) -> None:  # pragma: no cover - compiled; checked against the numpy reference in tests
    # Without `cand` the pass selects the rows itself (`row_pass.PROTOCOL_ROWS`); with it (a
    # time zone somewhere: offsets looked up in numpy, per candidate) `starts` index `cand`.
    for p in numba.prange(starts.shape[0] - 1):
        a = starts[p]
        e = starts[p + 1]
        if not listed:
            e = first_after(t, a, e, now_s)
            a = first_after(t, a, e, from_s - 1)
        fixed = override_min[p]
        has_fixed = not np.isnan(fixed)
        fixed_s = np.int64(fixed * 60) if has_fixed else np.int64(0)
        # Offset at now: the fixed one, else that of the newest reading with one, else the zone's.
        now_offset = fixed_s if has_fixed else zone_now_s[p]
        if not has_fixed:
            for j in range(e - 1, a - 1, -1):
                i = cand[j] if listed else j
                own = row_offset_min[i]
                if own == NO_OFFSET or (
                    not listed
                    and (implausible[i] or flagged[i] or not cuff_ok(i, kind, systolic, diastolic))
                ):
                    continue
                now_offset = np.int64(own) * 60
                break
        first_day_kept = (now_s + now_offset) // DAY_S - 6
        n = 0
        n_days = 0
        prev_day = np.int64(0)
        day1 = np.int64(0)
        seen_day1 = False
        sum_sys = 0.0
        sum_dia = 0.0
        last = -1
        for j in range(a, e):
            i = cand[j] if listed else j
            if listed:
                off = offsets_s[j]
            else:
                if implausible[i] or flagged[i] or not cuff_ok(i, kind, systolic, diastolic):
                    continue
                if has_fixed:
                    off = fixed_s
                elif row_offset_min[i] != NO_OFFSET:
                    off = np.int64(row_offset_min[i]) * 60
                else:
                    off = np.int64(0)
            local = t[i] + off
            day = local // DAY_S
            if day < first_day_kept:
                continue
            if slots.shape[0]:
                hour = (local % DAY_S) // HOUR_S
                in_slot = False
                for s in range(slots.shape[0]):
                    if slots[s, 0] <= hour <= slots[s, 1]:
                        in_slot = True
                if not in_slot:
                    continue
            if drop_first_day:
                if not seen_day1:
                    seen_day1 = True
                    day1 = day
                    continue
                if day <= day1:
                    continue
            if n == 0 or day != prev_day:
                n_days += 1
                prev_day = day
            n += 1
            sum_sys += systolic[i]
            sum_dia += diastolic[i]
            last = i
            evidence[i] = True
        count[p] = n
        days[p] = n_days
        newest[p] = last
        mean_sys[p] = sum_sys / n if n else np.nan
        mean_dia[p] = sum_dia / n if n else np.nan


_protocol_parallel = build_kernel(_protocol_body, parallel=True)
_protocol_serial = build_kernel(_protocol_body, parallel=False)


@dataclass(frozen=True, slots=True)
class ProtocolStats:
    """Per patient, over the readings a protocol keeps: `count`, distinct local `days`, mean
    systolic and diastolic pressures (NaN without readings), the `newest` kept row (-1 if
    none); `evidence` marks the kept rows."""

    count: IntArray
    days: IntArray
    mean_systolic_mmhg: FloatArray
    mean_diastolic_mmhg: FloatArray
    newest: IntArray
    evidence: BoolArray


def protocol_stats(
    cols: ReadingColumns,
    now_s: int,
    *,
    clock: LocalClock,
    override_min: FloatArray,
    slots_h: tuple[tuple[int, int], ...],
    drop_first_day: bool,
    starts: IntArray | None = None,
) -> ProtocolStats:
    """The protocol's statistics over each patient's cuff readings (`bp.bp_ok`, no cuff
    measurement-status flag) measured in the last `HISTORY_S` up to now: local days from
    `clock` and the care plan's fixed offsets `override_min` (minutes, NaN: none) per patient;
    `slots_h` the local hours kept (inclusive pairs; none: every hour); `drop_first_day` drops
    day 1. `starts`: the segment offsets (`window_pass.segment_starts`), if known."""
    n_pat = cols.n_patients
    if starts is None:
        starts = segment_starts(cols)
    override = np.ascontiguousarray(np.broadcast_to(override_min, n_pat), dtype=np.float64)
    cand = np.zeros(0, dtype=np.int64)
    offsets = np.zeros(0, dtype=np.int64)
    zone_now = np.zeros(n_pat, dtype=np.int64)
    if clock.has_zones:  # offsets from time zones: numpy, per candidate row
        cand = recent_rows(cols, now_s, now_s - HISTORY_S - 1, PROTOCOL_ROWS, starts=starts)
        ps = cols.patient[cand]
        starts = np.searchsorted(ps, np.arange(n_pat + 1, dtype=np.int64)).astype(np.int64)
        offsets = clock.offsets_s(ps, cols.measured_at_s[cand], cols.utc_offset_min[cand], override)
        none = np.full(n_pat, NO_OFFSET, dtype=np.int16)
        zone_now = clock.offsets_now_s(now_s, n_pat, np.full(n_pat, np.nan), none)
    out = ProtocolStats(
        np.empty(n_pat, dtype=np.int64),
        np.empty(n_pat, dtype=np.int64),
        np.empty(n_pat),
        np.empty(n_pat),
        np.empty(n_pat, dtype=np.int64),
        np.zeros(len(cols), dtype=np.bool_),
    )
    if n_pat:
        kernel = _protocol_parallel if len(cols) >= PARALLEL_ROWS else _protocol_serial
        kernel(
            starts, clock.has_zones, cand, cols.measured_at_s, cols.kind, cols.implausible,
            cols.bp_flagged, cols.systolic_mmhg, cols.diastolic_mmhg, cols.utc_offset_min,
            offsets, override, zone_now, int(now_s) - HISTORY_S, int(now_s),
            np.array(slots_h, dtype=np.int64).reshape(-1, 2), drop_first_day, out.count,
            out.days, out.mean_systolic_mmhg, out.mean_diastolic_mmhg, out.newest, out.evidence,
        )  # fmt: skip
    return out
