"""The engine's in-memory columnar window: the last `lookback` of readings, kept up to date
from the source's cursor instead of being reloaded and re-sorted for every evaluation.

`merge` inserts a batch of new rows into the sorted window with one `np.insert` per column
(positions from `np.searchsorted` on the composite (patient, time) key), so a step costs a
linear copy of the window, not a sort. New patients get codes after the existing ones: the
patient dictionary is in arrival order, not sorted, which nothing relies on. A new row that
repeats a reading already in the window (or in the batch) is dropped (`duplicate_rows`).
"""

from __future__ import annotations

import numpy as np

from alerts.rules.columns import (
    ARRAY_FIELDS,
    EPOCH_BASE_S,
    TIME_BITS,
    ReadingColumns,
    duplicate_rows,
)

_COLUMNS = tuple(name for name in ARRAY_FIELDS if name != "patient")


def merge(window: ReadingColumns | None, new: ReadingColumns, *, start_s: int) -> ReadingColumns:
    """`window` plus `new` (whose cursors are all above the window's), without rows measured
    before `start_s`, sorted by (patient, time, cursor)."""
    if window is None:
        return _trim(new, start_s)
    if not len(new):
        return _trim(window, start_s)
    index = {pid: i for i, pid in enumerate(window.patient_ids)}
    ids = list(window.patient_ids)
    mapping = np.empty(new.n_patients, dtype=np.int64)
    for code, pid in enumerate(new.patient_ids):
        mapping[code] = index.setdefault(pid, len(ids))
        if mapping[code] == len(ids):
            ids.append(pid)
    codes = mapping[new.patient]
    order = np.lexsort((new.cursor, new.measured_at_s, codes))
    key = (codes[order] << TIME_BITS) | (new.measured_at_s[order] - EPOCH_BASE_S)
    at = np.searchsorted(window.key, key, side="right")
    merged = {
        name: np.insert(getattr(window, name), at, getattr(new, name)[order]) for name in _COLUMNS
    }
    patient = np.insert(window.patient, at, codes[order])
    out = ReadingColumns(tuple(ids), patient, **merged)
    duplicate = duplicate_rows(out)
    return _trim(out.take(~duplicate) if duplicate.any() else out, start_s)


def _trim(cols: ReadingColumns, start_s: int) -> ReadingColumns:
    return cols.take(cols.measured_at_s >= start_s)
