"""Read port for the rules engine and the API: stored readings as columns.

Two queries, both on an engine or an open connection:

- `readings_since(source, after_id, limit)`: the next readings in commit order after a cursor
  (`readings.id`). Writers serialise commits (`ingest.store`), so a consumer that remembers
  `batch.last_id` and asks again never misses a row.
- `readings_for_patient(source, patient_id, kind, start, end)`: one patient's readings of one
  kind with `start <= measured_at < end`, ordered by `measured_at`.

Both return a `ReadingColumns` of numpy arrays, one entry per reading. Missing numeric values
(and IEEE 11073 special values) are NaN in the typed columns; `values` holds each reading's
value document (specials as their JSON spelling, ``"+INF"`` for a meter's HI) and `status` its
status flags as a tuple. Control-solution results are included and flagged in
`control_solution`: clinical rules must drop them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from ingest import schema

_COLUMNS = (
    schema.readings.c.id,
    schema.readings.c.reading_id,
    schema.readings.c.patient_id,
    schema.readings.c.kind,
    schema.readings.c.measured_at,
    schema.readings.c.glucose_mmol_l,
    schema.readings.c.systolic_mmhg,
    schema.readings.c.diastolic_mmhg,
    schema.readings.c.pulse_per_min,
    schema.readings.c.meal,
    schema.readings.c.control_solution,
    schema.readings.c.status,
    schema.readings.c["values"],
)


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Stored readings as parallel arrays (length n each)."""

    id: npt.NDArray[np.int64]
    reading_id: npt.NDArray[np.object_]
    patient_id: npt.NDArray[np.object_]
    kind: npt.NDArray[np.object_]
    measured_at_s: npt.NDArray[np.float64]
    glucose_mmol_l: npt.NDArray[np.float64]
    systolic_mmhg: npt.NDArray[np.float64]
    diastolic_mmhg: npt.NDArray[np.float64]
    pulse_per_min: npt.NDArray[np.float64]
    meal: npt.NDArray[np.object_]
    control_solution: npt.NDArray[np.bool_]
    status: npt.NDArray[np.object_]
    values: npt.NDArray[np.object_]

    def __len__(self) -> int:
        return int(self.id.shape[0])

    @property
    def last_id(self) -> int | None:
        """The cursor to pass as `after_id` next time (None when the batch is empty)."""
        return int(self.id[-1]) if len(self) else None


def _epoch_s(moment: datetime) -> float:
    if moment.tzinfo is None:  # SQLite returns naive datetimes; the store only holds UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _float(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _objects(items: list[object]) -> npt.NDArray[np.object_]:
    out = np.empty(len(items), dtype=object)  # element-wise: tuples and dicts stay whole
    for i, item in enumerate(items):
        out[i] = item
    return out


def _columns(rows: Sequence[sa.Row[tuple[object, ...]]]) -> ReadingColumns:
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(_COLUMNS)
    return ReadingColumns(
        id=np.array(cols[0], dtype=np.int64),
        reading_id=np.array(cols[1], dtype=object),
        patient_id=np.array(cols[2], dtype=object),
        kind=np.array(cols[3], dtype=object),
        measured_at_s=np.array([_epoch_s(m) for m in cols[4]], dtype=np.float64),
        glucose_mmol_l=_float(cols[5]),
        systolic_mmhg=_float(cols[6]),
        diastolic_mmhg=_float(cols[7]),
        pulse_per_min=_float(cols[8]),
        meal=np.array(cols[9], dtype=object),
        control_solution=np.array(cols[10], dtype=np.bool_),
        status=_objects([tuple(flags) for flags in cols[11]]),
        values=_objects(list(cols[12])),
    )


def _run(source: sa.Engine | sa.Connection, query: sa.Select[tuple[object, ...]]) -> ReadingColumns:
    if isinstance(source, sa.Engine):
        with source.connect() as conn:
            return _columns(conn.execute(query).all())
    return _columns(source.execute(query).all())


def readings_since(
    source: sa.Engine | sa.Connection, after_id: int, limit: int = 10_000
) -> ReadingColumns:
    """Return up to `limit` readings with `id > after_id`, in id (commit) order.

    Raises:
        ValueError: `limit` is not positive.
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    query = (
        sa.select(*_COLUMNS)
        .where(schema.readings.c.id > after_id)
        .order_by(schema.readings.c.id)
        .limit(limit)
    )
    return _run(source, query)


def readings_for_patient(
    source: sa.Engine | sa.Connection,
    patient_id: str,
    kind: str,
    start: datetime,
    end: datetime,
) -> ReadingColumns:
    """Return one patient's readings of `kind` with `start <= measured_at < end`, by time.

    Raises:
        ValueError: `start` or `end` is not timezone-aware.
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware (UTC)")
    r = schema.readings.c
    query = (
        sa.select(*_COLUMNS)
        .where(r.patient_id == patient_id, r.kind == kind)
        .where(r.measured_at >= start.astimezone(UTC), r.measured_at < end.astimezone(UTC))
        .order_by(r.measured_at, r.id)
    )
    return _run(source, query)


def last_reading_id(source: sa.Engine | sa.Connection) -> int:
    """Return the highest `readings.id` (0 when the table is empty).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database could not be read.
    """
    query = sa.select(sa.func.coalesce(sa.func.max(schema.readings.c.id), 0))
    if isinstance(source, sa.Engine):
        with source.connect() as conn:
            return int(conn.execute(query).scalar_one())
    return int(source.execute(query).scalar_one())
