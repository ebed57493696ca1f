"""Segment kernels shared by the rules: per-patient sums, windows, hysteresis state and runs.

Rows are sorted by (patient, measured_at) (`alerts.rules.columns`), so a patient's rows form
one contiguous segment and everything here is a whole-array operation: `np.bincount` for sums
(sequential in row order, so a plain per-patient loop in the same order gives the same floats),
`np.maximum.accumulate` for "last event so far", `np.searchsorted` on the composite key for
trailing windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Status(IntEnum):
    """State of a rule for one patient at `now`."""

    CLEAR = 0
    ACTIVE = 1
    INSUFFICIENT = 2  # not enough (or no fresh) data: the rule neither opens nor resolves


def at(values: FloatArray, patient: IntArray) -> FloatArray | float:
    """`values[patient]` per row, or the one shared value when every patient has the same
    (the usual case without care-plan overrides: no gather over all rows)."""
    if values.size and values.min() == values.max():
        return float(values[0])
    gathered: FloatArray = values[patient]
    return gathered


def value_at(values: IntArray, rows: IntArray, fill: int) -> IntArray:
    """`values[rows]`, with `fill` where a row is -1 (none), without copying `values`
    (`np.append(values, fill)[rows]` copies the whole column)."""
    out: IntArray = (
        np.where(rows >= 0, values[np.maximum(rows, 0)], fill)
        if values.size
        else (np.full(rows.shape, fill, dtype=np.int64))
    )
    return out


def per_patient_sum(patient: IntArray, values: FloatArray, n_patients: int) -> FloatArray:
    """Sum of `values` per patient (sequential in row order)."""
    return np.bincount(patient, weights=values, minlength=n_patients).astype(np.float64)


def per_patient_count(patient: IntArray, mask: BoolArray, n_patients: int) -> IntArray:
    """Number of rows where `mask` holds, per patient."""
    return np.bincount(patient[mask], minlength=n_patients).astype(np.int64)


def last_row(patient: IntArray, mask: BoolArray, n_patients: int) -> IntArray:
    """Index of each patient's last row where `mask` holds, -1 if none."""
    out = np.full(n_patients, -1, dtype=np.int64)
    rows = np.flatnonzero(mask)
    out[patient[rows]] = rows  # later rows overwrite earlier ones: numpy assigns in order
    return out


def first_row(patient: IntArray, mask: BoolArray, n_patients: int) -> IntArray:
    """Index of each patient's first row where `mask` holds, -1 if none."""
    out = np.full(n_patients, -1, dtype=np.int64)
    rows = np.flatnonzero(mask)[::-1]
    out[patient[rows]] = rows
    return out


def mean_and_cv(
    patient: IntArray, values: FloatArray, mask: BoolArray, n_patients: int
) -> tuple[IntArray, FloatArray, FloatArray]:
    """Count, mean and coefficient of variation (sample SD / mean) of `values[mask]` per patient.

    Two passes (mean, then squared deviations) for numerical stability; NaN where undefined
    (no rows for the mean, fewer than two rows or a zero mean for the CV).
    """
    rows = np.flatnonzero(mask)
    p = patient[rows]
    v = values[rows]
    n = np.bincount(p, minlength=n_patients).astype(np.int64)
    total = np.bincount(p, weights=v, minlength=n_patients)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        dev = v - mean[p]
        ss = np.bincount(p, weights=dev * dev, minlength=n_patients)
        sd = np.sqrt(ss / (n - 1))
        cv = np.where((n >= 2) & (mean != 0), sd / mean, np.nan)
    return n, mean, cv


def hysteresis_state(
    patient: IntArray, trigger: BoolArray, clear: BoolArray, initial: BoolArray
) -> BoolArray:
    """Alert state after each row: set by a trigger row, reset by a clear row, else unchanged.

    `initial[p]` is patient p's state before their first row (an episode already open).
    A row that is both trigger and clear counts as a trigger.
    """
    n = patient.shape[0]
    idx = np.arange(n, dtype=np.int64)
    decisive = trigger | clear
    last = np.maximum.accumulate(np.where(decisive, idx, -1)) if n else idx
    seg_start = np.searchsorted(patient, patient, side="left")
    own = last >= seg_start
    return np.where(own, trigger[np.maximum(last, 0)], initial[patient]) if n else trigger.copy()


@dataclass(frozen=True, slots=True)
class Runs:
    """Maximal runs of an active state: episodes as seen in the rows."""

    first_row: IntArray  # first row of the run (a trigger row)
    end_row: IntArray  # the row that cleared it, -1 while still open after the last row
    patient: IntArray
    carried_end_row: IntArray  # per patient: row clearing an episode open before row 0, or -1


def runs(patient: IntArray, state: BoolArray, initial: BoolArray) -> Runs:
    """Split a state sequence into runs (see `Runs`)."""
    n = patient.shape[0]
    n_patients = initial.shape[0]
    same = np.zeros(n, dtype=np.bool_)
    same[1:] = patient[1:] == patient[:-1]
    prev = np.where(same, np.roll(state, 1), initial[patient]) if n else state
    starts = np.flatnonzero(state & ~prev)
    ends = np.flatnonzero(~state & prev)
    pos = np.searchsorted(ends, starts)
    end_row = np.full(starts.shape[0], -1, dtype=np.int64)
    has = pos < ends.shape[0]
    cand = ends[np.minimum(pos, max(ends.shape[0] - 1, 0))] if ends.shape[0] else pos
    ok = has & (patient[cand] == patient[starts]) if ends.shape[0] else has
    end_row[ok] = cand[ok]
    carried = np.full(n_patients, -1, dtype=np.int64)
    first_end = first_row(patient, ~state & prev, n_patients)
    first_start = first_row(patient, state & ~prev, n_patients)
    closes_initial = initial & (first_end >= 0) & ((first_start < 0) | (first_end < first_start))
    carried[closes_initial] = first_end[closes_initial]
    return Runs(starts.astype(np.int64), end_row, patient[starts], carried)


def trailing_start(key: IntArray, window_s: int) -> IntArray:
    """For each row, the first row of the same patient measured at or after t - window_s."""
    return np.searchsorted(key, key - window_s, side="left").astype(np.int64)


def distinct_days(p: IntArray, day: IntArray, rows: BoolArray, n_pat: int) -> IntArray:
    """Number of distinct `day` values among each patient's `rows` (rows sorted by time)."""
    sel = np.flatnonzero(rows)
    ps = p[sel]
    ds = day[sel]
    new = np.ones(sel.shape[0], dtype=np.bool_)
    new[1:] = (ps[1:] != ps[:-1]) | (ds[1:] != ds[:-1])
    return np.bincount(ps[new], minlength=n_pat).astype(np.int64)
