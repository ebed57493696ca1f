"""The in-memory window: merging a batch equals building the columns from all rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine.window import merge
from alerts.rules.columns import KindCode, ReadingColumns, build_columns

BASE = 1_772_352_000

rows = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "zz"]), st.integers(0, 50), st.floats(2, 20)),
    max_size=30,
)


def _build(items: list[tuple[str, int, float]], first_cursor: int) -> ReadingColumns:
    n = len(items)
    return build_columns(
        [p for p, _, _ in items], [BASE + t for _, t, _ in items], [KindCode.GLUCOSE] * n,
        glucose_mmol_l=[v for _, _, v in items],
        reading_ref=[f"r{first_cursor + i}" for i in range(n)],
        cursor=list(range(first_cursor, first_cursor + n)),
    )  # fmt: skip


def _rows(cols: ReadingColumns) -> list[tuple[str, int, int, float, str]]:
    ids = np.asarray(cols.patient_ids, dtype=object)[cols.patient]
    columns = (cols.measured_at_s, cols.cursor, cols.glucose_mmol_l, cols.reading_ref)
    return list(zip(ids.tolist(), *(c.tolist() for c in columns), strict=True))


@settings(max_examples=60, deadline=None, print_blob=True)
@given(rows, rows, st.integers(0, 50))
def test_merge_equals_building_from_all_rows(
    old: list[tuple[str, int, float]], new: list[tuple[str, int, float]], start: int
) -> None:
    merged = merge(_build(old, 1), _build(new, 1 + len(old)), start_s=BASE + start)
    everything = _build(old + new, 1)
    expected = everything.take(everything.measured_at_s >= BASE + start)
    # Same rows; the patient dictionary is in arrival order, so compare per patient.
    assert sorted(_rows(merged)) == sorted(_rows(expected))
    key = merged.key
    assert np.all(np.diff(key) >= 0)  # still sorted by (patient, time) ...
    ties = np.flatnonzero(np.diff(key) == 0)
    assert np.all(merged.cursor[ties] < merged.cursor[ties + 1])  # ... then cursor
