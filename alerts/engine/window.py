"""The engine's in-memory columnar window: the last `lookback` of readings, kept up to date
from the source's cursor instead of being reloaded for every evaluation."""

from __future__ import annotations

import numpy as np

from alerts.rules.columns import ReadingColumns, build_columns


def merge(window: ReadingColumns | None, new: ReadingColumns, *, start_s: int) -> ReadingColumns:
    """`window` plus `new`, without rows measured before `start_s` or already present (same
    cursor), re-sorted by (patient, time)."""
    parts = [c for c in (window, new) if c is not None and len(c)]
    if not parts:
        return new
    ids = [np.asarray(c.patient_ids, dtype=object)[c.patient] for c in parts]

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(c, name) for c in parts])

    cursor = cat("cursor")
    _, first = np.unique(cursor, return_index=True)
    keep = np.zeros(cursor.shape[0], dtype=np.bool_)
    keep[first] = True
    keep &= cat("measured_at_s") >= start_s
    return build_columns(
        np.concatenate(ids)[keep], cat("measured_at_s")[keep], cat("kind")[keep],
        glucose_mmol_l=cat("glucose_mmol_l")[keep], glucose_special=cat("glucose_special")[keep],
        systolic_mmhg=cat("systolic_mmhg")[keep], diastolic_mmhg=cat("diastolic_mmhg")[keep],
        pulse_per_min=cat("pulse_per_min")[keep], meal=cat("meal")[keep],
        control_solution=cat("control_solution")[keep], bp_flagged=cat("bp_flagged")[keep],
        symptoms=cat("symptoms")[keep], reading_ref=cat("reading_ref")[keep],
        cursor=cursor[keep],
    )  # fmt: skip
