"""Local time for protocol windows (morning and evening slots, "day 1"), per patient and reading.

The local UTC offset of a reading comes from, in this order:
1. the care plan's explicit `utc_offset_min` for the rule (an override, a fixed offset);
2. the offset written with the reading's time by its source (a CSV time such as
   `2026-03-01T07:30:00+08:00`; `Z` says UTC, not local time, and gives none);
3. the patient's IANA time zone (`Asia/Shanghai`, `Europe/Berlin`: daylight saving included);
4. UTC.

Time zones arrive as `datetime.tzinfo` objects loaded at the edge (`zoneinfo`), so this module
does no I/O: it asks `utcoffset` at daily probes over the times it needs, finds each change of
offset to the second by bisection, and looks offsets up for all rows with `np.searchsorted`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

import numpy as np

from alerts.rules.columns import NO_OFFSET, Int16Array
from alerts.rules.result import FloatArray, IntArray

DAY_S = 86_400


def _offset_s(zone: tzinfo, t: int) -> int:
    offset = datetime.fromtimestamp(t, tz=UTC).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def zone_offsets_s(zone: tzinfo, t: IntArray) -> IntArray:
    """UTC offset in seconds of `zone` at each time `t` (seconds since the epoch)."""
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(t.min()), int(t.max())
    grid = list(range(lo - DAY_S, hi + 2 * DAY_S, DAY_S))
    offsets = [_offset_s(zone, g) for g in grid]
    starts, values = [grid[0]], [offsets[0]]
    for i in range(1, len(grid)):
        if offsets[i] == offsets[i - 1]:
            continue
        a, b = grid[i - 1], grid[i]  # offset(a) is the old one, offset(b) the new one
        while b - a > 1:
            mid = (a + b) // 2
            if _offset_s(zone, mid) == offsets[i - 1]:
                a = mid
            else:
                b = mid
        starts.append(b)
        values.append(offsets[i])
    index = np.searchsorted(np.asarray(starts, dtype=np.int64), t, side="right") - 1
    out: IntArray = np.asarray(values, dtype=np.int64)[np.maximum(index, 0)]
    return out


class LocalClock:
    """Local UTC offsets for the patients of one evaluation (codes as in the columns)."""

    def __init__(self, zones: Sequence[tzinfo | None]) -> None:
        distinct: dict[tzinfo, int] = {}
        for zone in zones:
            if zone is not None:
                distinct.setdefault(zone, len(distinct))
        self._distinct = list(distinct)
        self._zone_of: IntArray = np.array(
            [-1 if z is None else distinct[z] for z in zones], dtype=np.int64
        )

    @property
    def has_zones(self) -> bool:
        """Whether any patient has a time zone."""
        return bool(self._distinct)

    def offsets_s(
        self,
        patient: IntArray,
        t: IntArray,
        row_offset_min: Int16Array,
        override_min: FloatArray,
    ) -> IntArray:
        """Per row (patient codes, times, the rows' own offsets), the local offset in seconds;
        `override_min[p]` (NaN: none) is the care plan's fixed offset for patient p."""
        out = np.zeros(t.shape[0], dtype=np.int64)
        own = row_offset_min != NO_OFFSET
        out[own] = row_offset_min[own].astype(np.int64) * 60
        if self.has_zones and patient.size:
            zone_of = self._zone_of[patient]
            for k, zone in enumerate(self._distinct):  # one pass per distinct zone
                rows = np.flatnonzero(~own & (zone_of == k))
                out[rows] = zone_offsets_s(zone, t[rows])
        override = override_min[patient] if patient.size else np.zeros(0)
        fixed = ~np.isnan(override)
        out[fixed] = (override[fixed] * 60).astype(np.int64)
        return out

    def offsets_now_s(
        self,
        now_s: int,
        n_patients: int,
        override_min: FloatArray,
        last_row_offset_min: Int16Array,
    ) -> IntArray:
        """Per patient, the local offset at `now_s`: the override, else the offset of the
        patient's newest reading that has one (`last_row_offset_min`, NO_OFFSET if none), else
        the patient's zone, else 0."""
        out = np.zeros(n_patients, dtype=np.int64)
        if self.has_zones:
            now_offsets = np.array([_offset_s(z, now_s) for z in self._distinct], dtype=np.int64)
            zone_of = self._zone_of[:n_patients]
            out[zone_of >= 0] = now_offsets[zone_of[zone_of >= 0]]
        own = last_row_offset_min != NO_OFFSET
        out[own] = last_row_offset_min[own].astype(np.int64) * 60
        fixed = ~np.isnan(override_min)
        out[fixed] = (override_min[fixed] * 60).astype(np.int64)
        return out
