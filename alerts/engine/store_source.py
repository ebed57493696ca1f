"""Readings from the record store (ingest's `readings` table) as `ReadingColumns`.

Ingest's read port (`ingest.read_port`) turns IEEE 11073 specials into NaN and leaves out the
status flags; the rules need both (a meter's LO is a level 2 low, movement-flagged cuff
readings are dropped from averaging protocols), so this adapter selects the same table through
ingest's schema with the `values` and `status` documents, and uses the read port's cursor
semantics: `readings.id` grows in commit order, so "after id N" never skips a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np
import sqlalchemy as sa

from alerts.engine.csv_source import BP_QUALITY_FLAGS, SPECIALS
from alerts.rules.columns import KindCode, MealCode, ReadingColumns, SpecialCode, build_columns
from ingest import schema

_R = schema.readings.c
_SELECT: Final = (
    _R.id, _R.reading_id, _R.patient_id, _R.kind, _R.measured_at, _R.glucose_mmol_l,
    _R.systolic_mmhg, _R.diastolic_mmhg, _R.pulse_per_min, _R.meal, _R.control_solution,
    _R.status, _R["values"],
)  # fmt: skip
KIND_CODES: Final = {
    "glucose": KindCode.GLUCOSE,
    "blood_pressure": KindCode.BLOOD_PRESSURE,
    "ketone": KindCode.KETONE,
}
MEAL_CODES: Final = {
    "preprandial": MealCode.PREPRANDIAL,
    "before_meal": MealCode.PREPRANDIAL,
    "postprandial": MealCode.POSTPRANDIAL,
    "after_meal": MealCode.POSTPRANDIAL,
    "fasting": MealCode.FASTING,
    "casual": MealCode.CASUAL,
    "bedtime": MealCode.BEDTIME,
}


def _epoch_s(moment: datetime) -> int:
    if moment.tzinfo is None:  # SQLite returns naive datetimes; the store holds UTC only
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def _typed(row: sa.Row[tuple[object, ...]], index: int, name: str) -> float:
    """The typed column, or the number in the `values` document when the column is NULL."""
    if isinstance(row[index], int | float):
        return float(row[index])
    values = row[12] if isinstance(row[12], dict) else {}
    raw = values.get(name)
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else _NAN


_NAN: Final = float("nan")


def to_columns(rows: Sequence[sa.Row[tuple[object, ...]]]) -> ReadingColumns:
    """Convert selected `readings` rows (see `_SELECT`) to sorted columns."""
    special = []
    flags: list[frozenset[str]] = []
    for row in rows:
        values = row[12] if isinstance(row[12], dict) else {}
        raw = values.get("glucose_mmol_l")
        code = SPECIALS.get(raw.lower(), SpecialCode.INVALID) if isinstance(raw, str) else None
        special.append(int(code) if code is not None else int(SpecialCode.NONE))
        status = row[11] if isinstance(row[11], list) else []
        flags.append(frozenset(str(f) for f in status))
    kind = [int(KIND_CODES.get(str(r[3]), KindCode.OTHER)) for r in rows]
    meal = [int(MEAL_CODES.get(str(r[9]).lower(), MealCode.NONE)) for r in rows]
    return build_columns(
        [str(r[2]) for r in rows],
        np.array([_epoch_s(r[4]) for r in rows], dtype=np.int64),
        np.array(kind, dtype=np.int8),
        glucose_mmol_l=np.array([_typed(r, 5, "glucose_mmol_l") for r in rows], dtype=np.float64),
        glucose_special=np.array(special, dtype=np.int8),
        systolic_mmhg=np.array([_typed(r, 6, "systolic_mmhg") for r in rows], dtype=np.float64),
        diastolic_mmhg=np.array([_typed(r, 7, "diastolic_mmhg") for r in rows], dtype=np.float64),
        pulse_per_min=np.array([_typed(r, 8, "pulse_per_min") for r in rows], dtype=np.float64),
        meal=np.array(meal, dtype=np.int8),
        control_solution=np.array([bool(r[10]) for r in rows], dtype=np.bool_),
        bp_flagged=np.array([bool(BP_QUALITY_FLAGS & f) for f in flags], dtype=np.bool_),
        symptoms=np.array(["symptoms" in f for f in flags], dtype=np.bool_),
        reading_ref=[str(r[1]) for r in rows],
        cursor=np.array([int(r[0]) for r in rows], dtype=np.int64),
    )


def readings_after(conn: sa.Connection, after_id: int, limit: int) -> ReadingColumns:
    """Up to `limit` readings with `readings.id > after_id`, lowest ids first.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    query = sa.select(*_SELECT).where(_R.id > after_id).order_by(_R.id).limit(limit)
    return to_columns(conn.execute(query).all())


def readings_between(conn: sa.Connection, start: datetime, end: datetime) -> ReadingColumns:
    """All readings with `start <= measured_at <= end` (any patient).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    query = sa.select(*_SELECT).where(_R.measured_at >= start, _R.measured_at <= end)
    return to_columns(conn.execute(query).all())


class StoreSource:
    """`ReadingSource` over the record store, bound to the caller's connection."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def readings_after(self, after_id: int, limit: int) -> ReadingColumns:
        """See `readings_after`."""
        return readings_after(self._conn, after_id, limit)

    def readings_between(self, start: datetime, end: datetime) -> ReadingColumns:
        """See `readings_between`."""
        return readings_between(self._conn, start, end)
