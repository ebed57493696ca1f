"""The in-memory window: merging a batch equals building the columns from all rows."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine.tiered import TieredWindow
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


@settings(max_examples=80, deadline=None, print_blob=True)
@given(
    rows, rows, st.sets(st.sampled_from(["a", "b", "c", "zz", "new"]), max_size=5),
    st.integers(0, 50), st.one_of(st.none(), st.integers(0, 50)),
)  # fmt: skip
def test_tiered_patients_equal_selecting_from_all_rows(
    old: list[tuple[str, int, float]],
    new: list[tuple[str, int, float]],
    wanted: set[str],
    since: int,
    until: int | None,
) -> None:
    """The rows of some patients (base through the segment offsets, tail merged in) equal
    those patients' rows of all the readings, within the time range."""
    window = TieredWindow(_build(old, 1))
    window.add(_build(new, 1 + len(old)), start_s=BASE)
    got = window.patients(
        sorted(wanted), since_s=BASE + since, until_s=None if until is None else BASE + until
    )
    everything = _build(old + new, 1)
    ids = np.asarray(everything.patient_ids, dtype=object)[everything.patient]
    keep = np.isin(ids, sorted(wanted)) & (everything.measured_at_s >= BASE + since)
    if until is not None:
        keep &= everything.measured_at_s <= BASE + until
    assert sorted(_rows(got)) == sorted(_rows(everything.take(keep)))
    assert np.all(np.diff(got.key) >= 0)  # sorted by (patient, time) ...
    ties = np.flatnonzero(np.diff(got.key) == 0)
    assert np.all(got.cursor[ties] < got.cursor[ties + 1])  # ... then cursor
