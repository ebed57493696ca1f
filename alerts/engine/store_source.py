"""Readings from the record store (ingest's `readings` table) as `ReadingColumns`.

Ingest's read port (`ingest.read_port`) turns IEEE 11073 specials into NaN and leaves out the
status flags; the rules need both (a meter's LO is a level 2 low, movement-flagged cuff
readings are dropped from averaging protocols), so this adapter selects the same table through
ingest's schema with the `values` and `status` documents, and uses the read port's cursor
semantics: `readings.id` grows in commit order, so "after id N" never skips a row.

A reading's `received_at_s` is when the record learned of it: the later of the gateway's
`received_at` and ingest's `stored_at` (a hub that was offline for days uploads late).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import numpy as np
import sqlalchemy as sa

from alerts.engine.csv_source import BP_QUALITY_FLAGS, SPECIALS
from alerts.engine.partitions import PARTITIONS, PG_PARTITION_SQL
from alerts.rules.columns import (
    KIND_BY_NAME,
    KindCode,
    MealCode,
    ReadingColumns,
    SpecialCode,
    build_columns,
)
from ingest import schema

_R = schema.readings.c
# The JSON documents as text: the client parses only the few that matter (see to_columns).
_SELECT: Final = (
    _R.id, _R.reading_id, _R.patient_id, _R.kind, _R.measured_at, _R.glucose_mmol_l,
    _R.systolic_mmhg, _R.diastolic_mmhg, _R.pulse_per_min, _R.meal, _R.control_solution,
    sa.cast(_R.status, sa.Text), sa.cast(_R["values"], sa.Text), _R.received_at, _R.stored_at,
    _R.device_id,
)  # fmt: skip
# The wearables' values live in the `values` document only (no typed column): the one each kind
# is evaluated on.
VITAL_OF_KIND: Final = {
    "heart_rate": "heart_rate_per_min",
    "spo2": "spo2_pct",
    "body_temperature": "body_temperature_c",
    "body_weight": "body_weight_kg",
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


_NAN: Final = float("nan")
_NUMBERS: Final = ("glucose_mmol_l", "systolic_mmhg", "diastolic_mmhg", "pulse_per_min")


def _number(document: dict[str, object], name: str) -> float:
    raw = document.get(name)
    return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else _NAN


def _status_flags(text: object) -> tuple[bool, bool]:
    """(BP quality flagged, symptoms) of one `status` document (JSON text)."""
    status = json.loads(text) if isinstance(text, str) else text
    flags = frozenset(str(f) for f in status) if isinstance(status, list) else frozenset()
    return bool(BP_QUALITY_FLAGS & flags), "symptoms" in flags


def to_columns(
    rows: Sequence[sa.Row[tuple[object, ...]]], *, merge_duplicates: bool = True
) -> ReadingColumns:
    """Convert selected `readings` rows (see `_SELECT`) to sorted columns (identical readings
    merged unless `merge_duplicates` is False: see `build_columns`).

    Column by column: the JSON documents arrive as text and are parsed only where they matter
    (a typed column is NULL and the document names it; a non-empty status), which is what a
    window load of millions of rows spends its time on otherwise.
    """
    if not rows:
        return build_columns([], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
    (ids, refs, pids, kinds, measured, *typed, meals, control, status, values, received, stored,
     devices) = zip(*rows, strict=True)  # fmt: skip
    pairs = zip(_NUMBERS, typed, strict=True)
    numbers = {name: np.array(col, dtype=np.float64) for name, col in pairs}
    special = np.zeros(len(rows), dtype=np.int8)
    documents: dict[int, dict[str, object]] = {}
    for name, column in numbers.items():
        key = f'"{name}"'
        for i in np.flatnonzero(np.isnan(column)).tolist():
            text = values[i]
            if not (isinstance(text, str) and key in text):
                continue
            document = documents.get(i)
            if document is None:
                loaded = json.loads(text)
                document = documents[i] = loaded if isinstance(loaded, dict) else {}
            column[i] = _number(document, name)
            raw = document.get(name)
            if name == "glucose_mmol_l" and isinstance(raw, str):
                special[i] = SPECIALS.get(raw.lower(), SpecialCode.INVALID)
    vitals = {name: np.full(len(rows), _NAN) for name in VITAL_OF_KIND.values()}
    for i, kind in enumerate(kinds):
        vital = VITAL_OF_KIND.get(str(kind))
        if vital is None:
            continue
        document = documents.get(i)
        if document is None:
            loaded = json.loads(values[i]) if isinstance(values[i], str) else values[i]
            document = documents[i] = loaded if isinstance(loaded, dict) else {}
        vitals[vital][i] = _number(document, vital)
    by_text = {text: _status_flags(text) for text in set(status)}
    flags = np.array([by_text[text] for text in status], dtype=np.bool_).reshape(-1, 2)
    kind_of = {k: int(KIND_BY_NAME.get(str(k), KindCode.OTHER)) for k in set(kinds)}
    meal_of = {m: int(MEAL_CODES.get(str(m).lower(), MealCode.NONE)) for m in set(meals)}
    return build_columns(
        [str(p) for p in pids],
        np.array([_epoch_s(m) for m in measured], dtype=np.int64),
        np.array([kind_of[k] for k in kinds], dtype=np.int8),
        glucose_mmol_l=numbers["glucose_mmol_l"],
        glucose_special=special,
        systolic_mmhg=numbers["systolic_mmhg"],
        diastolic_mmhg=numbers["diastolic_mmhg"],
        pulse_per_min=numbers["pulse_per_min"],
        meal=np.array([meal_of[m] for m in meals], dtype=np.int8),
        control_solution=np.array(control, dtype=np.bool_),
        bp_flagged=flags[:, 0],
        symptoms=flags[:, 1],
        reading_ref=[str(r) for r in refs],
        cursor=np.array(ids, dtype=np.int64),
        received_at_s=np.maximum(
            np.array([_epoch_s(m) for m in received], dtype=np.int64),
            np.array([_epoch_s(m) for m in stored], dtype=np.int64),
        ),
        device_ref=[str(d) for d in devices],
        merge_duplicates=merge_duplicates,
        **vitals,
    )


def readings_after(
    conn: sa.Connection, after_id: int, limit: int, *where: sa.ColumnElement[bool]
) -> ReadingColumns:
    """Up to `limit` readings with `readings.id > after_id` (and `where`), lowest ids first.

    Every row read is returned, identical readings under other ids included: the caller's
    cursor must pass them all (else the next read finds them again, one group per step), and
    the window it adds them to counts them once.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    query = sa.select(*_SELECT).where(_R.id > after_id, *where).order_by(_R.id).limit(limit)
    return to_columns(conn.execute(query).all(), merge_duplicates=False)


def readings_between(
    conn: sa.Connection, start: datetime, end: datetime, *where: sa.ColumnElement[bool]
) -> ReadingColumns:
    """All readings with `start <= measured_at <= end` (and `where`; any patient).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    query = sa.select(*_SELECT).where(_R.measured_at >= start, _R.measured_at <= end, *where)
    return to_columns(conn.execute(query).all())


class StoreSource:
    """`ReadingSource` over the record store, bound to the caller's connection (optionally
    only the patients of some partitions, filtered by the server on PostgreSQL)."""

    def __init__(self, conn: sa.Connection, partitions: frozenset[int] | None = None) -> None:
        self._conn = conn
        self._where: tuple[sa.ColumnElement[bool], ...] = ()
        if partitions is not None and conn.dialect.name == "postgresql":
            expr: sa.ColumnElement[int] = sa.literal_column(PG_PARTITION_SQL.format(n=PARTITIONS))
            self._where = (expr.in_(sorted(partitions)),)

    def restricted(self, partitions: frozenset[int]) -> StoreSource:
        """The same source, only for patients in `partitions` (the caller still filters on
        SQLite, where the server cannot)."""
        return StoreSource(self._conn, partitions)

    def readings_after(self, after_id: int, limit: int) -> ReadingColumns:
        """See `readings_after`."""
        return readings_after(self._conn, after_id, limit, *self._where)

    def readings_between(self, start: datetime, end: datetime) -> ReadingColumns:
        """See `readings_between`."""
        return readings_between(self._conn, start, end, *self._where)
