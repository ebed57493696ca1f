"""A window whose steps cost what is new: a large sorted base, a small tail, segment offsets.

The base is the window as of the last compaction (sorted by patient, time, cursor) with each
patient's first row (`starts`); new readings go to the tail (merged into the tail only, so
adding costs the size of the tail, not of the window). `patients(ids)` gathers the rows of a
few patients, base and tail, through the offsets: the cost is their rows, not the window's.
`compact()` merges the tail into the base (one linear pass over the window) and drops rows
that left the lookback; the runner compacts at its full steps and when the tail outgrows a
fraction of the base. Pure: no I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from alerts.engine.window import merge
from alerts.rules.columns import EPOCH_BASE_S, TIME_BITS, ReadingColumns, duplicate_rows
from alerts.rules.window_pass import segment_starts

IntArray = npt.NDArray[np.int64]
_FIELDS: Final = tuple(
    f.name for f in dataclasses.fields(ReadingColumns) if f.name not in ("patient_ids", "patient")
)
# Compact once the tail holds this share of the base's rows (bounds a step's merge work).
TAIL_SHARE: Final = 0.02


def segment_search(times: IntArray, lo: IntArray, hi: IntArray, value_s: int) -> IntArray:
    """Per segment [lo, hi) of ascending `times`, the first row with a time >= `value_s` (hi
    if none): binary searches of all segments at once, each within its own rows (a search of
    the whole column would start far away in memory for every patient)."""
    lo = lo.copy()
    hi = hi.copy()
    last = max(times.shape[0] - 1, 0)
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) >> 1
        right = open_ & (times[np.minimum(mid, last)] < value_s)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(open_ & ~right, mid, hi)


class TieredWindow:
    """See module doc."""

    def __init__(self, base: ReadingColumns) -> None:
        self._set_base(base)
        self.tail: ReadingColumns | None = None

    def _set_base(self, base: ReadingColumns) -> None:
        self.base = base
        self.index = {pid: i for i, pid in enumerate(base.patient_ids)}
        self.starts: IntArray = segment_starts(base)

    def __len__(self) -> int:
        return len(self.base) + (len(self.tail) if self.tail is not None else 0)

    @property
    def tail_rows(self) -> int:
        """Rows added since the last compaction."""
        return len(self.tail) if self.tail is not None else 0

    def add(self, new: ReadingColumns, *, start_s: int) -> None:
        """Add new readings (cursors above every row's) to the tail."""
        if len(new):
            self.tail = merge(self.tail, new, start_s=start_s)

    def needs_compaction(self) -> bool:
        """True when the tail outgrew `TAIL_SHARE` of the base."""
        return self.tail_rows > max(10_000, TAIL_SHARE * len(self.base))

    def compact(self, *, start_s: int) -> ReadingColumns:
        """Merge the tail into the base, drop rows measured before `start_s`; the new base."""
        if self.tail is not None and len(self.tail):
            merged = merge(self.base, self.tail, start_s=start_s)
        else:
            merged = self.base.take(self.base.measured_at_s >= start_s)
        self._set_base(merged)
        self.tail = None
        return merged

    def patients(
        self, patient_ids: Sequence[str], *, since_s: int, until_s: int | None = None
    ) -> ReadingColumns:
        """The rows of these patients (base and tail) measured at or after `since_s` (and at or
        before `until_s`, if given), sorted, with a dictionary of just them. Cost: their rows,
        found through the offsets and one or two binary searches per patient."""
        known = sorted((self.index[p], p) for p in set(patient_ids) if p in self.index)
        rest = sorted(set(patient_ids) - {p for _, p in known})
        ids = tuple([p for _, p in known] + rest)
        base_codes = np.array([c for c, _ in known], dtype=np.int64)
        first, end = self.starts[base_codes], self.starts[base_codes + 1]
        times = self.base.measured_at_s
        lo = segment_search(times, first, end, since_s)
        hi = end if until_s is None else segment_search(times, lo, end, until_s + 1)
        lengths = np.maximum(hi - lo, 0)
        total = int(lengths.sum())
        # Row numbers lo..hi-1 for each patient, without a Python loop over rows.
        rows = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        code = np.repeat(np.arange(len(known), dtype=np.int64), lengths)
        base_t = self.base.measured_at_s[rows]
        picked = np.zeros(0, dtype=np.int64)
        if self.tail is not None and len(self.tail):
            position = {pid: i for i, pid in enumerate(ids)}
            tail_map = np.array(
                [position.get(pid, -1) for pid in self.tail.patient_ids], dtype=np.int64
            )
            mine = tail_map[self.tail.patient]
            t_all = self.tail.measured_at_s
            in_time = (
                (t_all >= since_s) if until_s is None else (t_all >= since_s) & (t_all <= until_s)
            )
            picked = np.flatnonzero((mine >= 0) & in_time)
        if not picked.size:
            out = {
                name: getattr(self.base, name)[rows] for name in _FIELDS if name != "measured_at_s"
            }
            cols = ReadingColumns(ids, code, measured_at_s=base_t, **out)
        else:
            assert self.tail is not None
            t_code = mine[picked]
            t_time = self.tail.measured_at_s[picked]
            order = np.lexsort((self.tail.cursor[picked], t_time, t_code))
            picked, t_code, t_time = picked[order], t_code[order], t_time[order]
            key = (code << TIME_BITS) | (base_t - EPOCH_BASE_S)
            t_key = (t_code << TIME_BITS) | (t_time - EPOCH_BASE_S)
            # Where each row goes: a tail row after the base rows with the same key (as
            # `np.insert` at the positions found), a base row after the tail rows before it.
            at = np.searchsorted(key, t_key, side="right")
            tail_pos = at + np.arange(picked.size)
            base_pos = np.arange(total) + np.searchsorted(at, np.arange(total), side="right")
            merged = {}
            for name in ("patient", *_FIELDS):
                column = getattr(self.base, name)
                both = np.empty(total + picked.size, dtype=column.dtype)
                both[base_pos] = code if name == "patient" else column[rows]
                both[tail_pos] = t_code if name == "patient" else getattr(self.tail, name)[picked]
                merged[name] = both
            cols = ReadingColumns(ids, **merged)
        duplicate = duplicate_rows(cols)  # a tail row repeating a base row: one reading
        return cols.take(~duplicate) if duplicate.any() else cols

    def reset(self, base: ReadingColumns) -> None:
        """Replace the window by `base` (sorted), with an empty tail."""
        self._set_base(base)
        self.tail = None
