"""Columnar readings: one numpy array per field, rows sorted by (patient, measured_at).

Patients are dictionary-encoded (`patient` holds indices into `patient_ids`), times are integer
seconds since the Unix epoch (UTC), values are in canonical units with NaN where a column does
not apply. IEEE 11073 special values are never numbers here either: `glucose_special` says what
a glucose reading was when its value is not a number (meter HI/LO, NaN, NRes).

A reading counts once: `build_columns` (and `alerts.engine.window.merge`) drop rows that repeat
an earlier row's patient, kind, time, values and flags (`duplicate_rows`), keeping the lowest
cursor.
Wearables: `cgm_glucose` rows carry their sensor glucose in `glucose_mmol_l` (with the same
`glucose_special`), heart-rate and SpO2 rows the per-minute mean the hub summarized (or a single
measurement) in `heart_rate_per_min` / `spo2_pct` (an oximeter's pulse in `pulse_per_min`),
thermometers `body_temperature_c`, scales `body_weight_kg`.
`received_at_s` is when the record learned of a reading (back-filled history arrives late),
`utc_offset_min` the local UTC offset written with the reading's time when the source had one
(`NO_OFFSET` otherwise), `implausible` is set by the evaluation (`alerts.rules.plausibility`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from alerts.rules.errors import ColumnsError

IntArray = npt.NDArray[np.int64]
Int8Array = npt.NDArray[np.int8]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjArray = npt.NDArray[np.object_]

# Composite sort key: patient index in the high bits, seconds since EPOCH_BASE_S in the low 32.
TIME_BITS: Final = 32
EPOCH_BASE_S: Final = 946_684_800  # 2000-01-01T00:00:00Z, the earliest time a reading may have
NO_OFFSET: Final = -32768  # `utc_offset_min` when the source gave no local offset
Int16Array = npt.NDArray[np.int16]


class KindCode(IntEnum):
    """Kind of a reading (devices.Kind), as stored in `kind`."""

    GLUCOSE = 0
    BLOOD_PRESSURE = 1
    KETONE = 2
    OTHER = 3
    HEART_RATE = 4
    SPO2 = 5
    BODY_TEMPERATURE = 6
    BODY_WEIGHT = 7
    CGM_GLUCOSE = 8  # interstitial glucose from a continuous monitor


# The record's kind names (devices.Kind values) and their codes; any other kind is OTHER.
KIND_BY_NAME: Final = {k.name.lower(): k for k in KindCode if k is not KindCode.OTHER}


class SpecialCode(IntEnum):
    """What a glucose value that is not a number was (devices.Special)."""

    NONE = 0
    HI = 1  # +INF: above the meter's range
    LO = 2  # -INF: below the meter's range
    INVALID = 3  # NaN, NRes, reserved: no result


class MealCode(IntEnum):
    """Meal context of a glucose reading (Glucose Measurement Context, GLS 3.106)."""

    NONE = 0
    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Readings of many patients, sorted by (patient, measured_at, cursor); see module doc."""

    patient_ids: tuple[str, ...]
    patient: IntArray
    measured_at_s: IntArray
    kind: Int8Array
    glucose_mmol_l: FloatArray
    glucose_special: Int8Array
    systolic_mmhg: FloatArray
    diastolic_mmhg: FloatArray
    pulse_per_min: FloatArray
    meal: Int8Array
    control_solution: BoolArray
    bp_flagged: BoolArray
    symptoms: BoolArray
    reading_ref: ObjArray
    cursor: IntArray
    received_at_s: IntArray
    utc_offset_min: Int16Array
    device_ref: ObjArray
    implausible: BoolArray
    heart_rate_per_min: FloatArray
    spo2_pct: FloatArray
    body_temperature_c: FloatArray
    body_weight_kg: FloatArray

    def __len__(self) -> int:
        return int(self.patient.shape[0])

    @property
    def n_patients(self) -> int:
        """Number of distinct patients (including those without rows after a selection)."""
        return len(self.patient_ids)

    @property
    def key(self) -> IntArray:
        """The sort key patient << 32 | (measured_at - 2000-01-01), ascending."""
        return (self.patient << TIME_BITS) | (self.measured_at_s - EPOCH_BASE_S)

    def segment_bounds(self) -> tuple[IntArray, IntArray]:
        """Start and end (exclusive) row of each patient's segment, indexed by patient."""
        codes = np.arange(self.n_patients, dtype=np.int64)
        starts = np.searchsorted(self.patient, codes, side="left").astype(np.int64)
        ends = np.searchsorted(self.patient, codes, side="right").astype(np.int64)
        return starts, ends

    def take(self, rows: IntArray | BoolArray) -> ReadingColumns:
        """A selection of rows (order kept, so still sorted), with the same patient dictionary."""
        if rows.dtype == np.bool_ and bool(rows.all()):
            return self
        return ReadingColumns(
            self.patient_ids,
            *(getattr(self, name)[rows] for name in ARRAY_FIELDS),
        )


ARRAY_FIELDS: Final = (
    "patient",
    "measured_at_s",
    "kind",
    "glucose_mmol_l",
    "glucose_special",
    "systolic_mmhg",
    "diastolic_mmhg",
    "pulse_per_min",
    "meal",
    "control_solution",
    "bp_flagged",
    "symptoms",
    "reading_ref",
    "cursor",
    "received_at_s",
    "utc_offset_min",
    "device_ref",
    "implausible",
    "heart_rate_per_min",
    "spo2_pct",
    "body_temperature_c",
    "body_weight_kg",
)
_DTYPES: Final = (
    np.int64, np.int64, np.int8, np.float64, np.int8, np.float64, np.float64, np.float64,
    np.int8, np.bool_, np.bool_, np.bool_, np.object_, np.int64, np.int64, np.int16, np.object_,
    np.bool_, np.float64, np.float64, np.float64, np.float64,
)  # fmt: skip
# The wearables' value columns (NaN where a column does not apply).
VITAL_VALUES: Final = ("heart_rate_per_min", "spo2_pct", "body_temperature_c", "body_weight_kg")
# The columns that make two rows the same reading (with the patient): identical rows.
IDENTITY: Final = (
    "measured_at_s", "kind", "glucose_mmol_l", "glucose_special", "systolic_mmhg",
    "diastolic_mmhg", "pulse_per_min", "meal", "control_solution", "bp_flagged", "symptoms",
    *VITAL_VALUES,
)  # fmt: skip


def build_columns(
    patient_id: Sequence[str] | ObjArray,
    measured_at_s: npt.ArrayLike,
    kind: npt.ArrayLike,
    *,
    glucose_mmol_l: npt.ArrayLike | None = None,
    glucose_special: npt.ArrayLike | None = None,
    systolic_mmhg: npt.ArrayLike | None = None,
    diastolic_mmhg: npt.ArrayLike | None = None,
    pulse_per_min: npt.ArrayLike | None = None,
    meal: npt.ArrayLike | None = None,
    control_solution: npt.ArrayLike | None = None,
    bp_flagged: npt.ArrayLike | None = None,
    symptoms: npt.ArrayLike | None = None,
    reading_ref: Sequence[str] | ObjArray | None = None,
    cursor: npt.ArrayLike | None = None,
    received_at_s: npt.ArrayLike | None = None,
    utc_offset_min: npt.ArrayLike | None = None,
    device_ref: Sequence[str] | ObjArray | None = None,
    heart_rate_per_min: npt.ArrayLike | None = None,
    spo2_pct: npt.ArrayLike | None = None,
    body_temperature_c: npt.ArrayLike | None = None,
    body_weight_kg: npt.ArrayLike | None = None,
    merge_duplicates: bool = True,
) -> ReadingColumns:
    """Build sorted columns from unsorted per-reading arrays (missing columns default empty;
    `received_at_s` defaults to `measured_at_s`), without duplicate readings unless
    `merge_duplicates` is False (rows read past a cursor: the reader must pass them all, and
    the window it adds them to merges them).

    Raises:
        ColumnsError: arrays of different lengths, times before 2000 or past 2136, unknown
            kind, special or meal codes, a local offset beyond -24..+24 h.
    """
    pids = np.asarray(patient_id, dtype=np.object_)
    n = pids.shape[0]

    def arr(value: npt.ArrayLike | None, dtype: type, fill: object, name: str) -> npt.NDArray[Any]:
        out: npt.NDArray[Any] = (
            np.full(n, fill, dtype=dtype) if value is None else np.asarray(value, dtype=dtype)
        )
        if out.shape != (n,):
            raise ColumnsError(name, f"has shape {out.shape}, expected ({n},)")
        return out

    t = arr(measured_at_s, np.int64, 0, "measured_at_s")
    if n and (t.min() < EPOCH_BASE_S or t.max() - EPOCH_BASE_S >= 1 << TIME_BITS):
        raise ColumnsError("measured_at_s", "outside 2000-01-01 .. 2136")
    k = arr(kind, np.int8, 0, "kind")
    _check_codes("kind", k, KindCode)
    special = arr(glucose_special, np.int8, 0, "glucose_special")
    _check_codes("glucose_special", special, SpecialCode)
    meal_codes = arr(meal, np.int8, 0, "meal")
    _check_codes("meal", meal_codes, MealCode)
    refs = arr(reading_ref, np.object_, "", "reading_ref")
    received = (
        t.copy() if received_at_s is None else arr(received_at_s, np.int64, 0, "received_at_s")
    )
    offsets = arr(utc_offset_min, np.int16, NO_OFFSET, "utc_offset_min")
    if n and (np.abs(offsets[offsets != NO_OFFSET].astype(np.int32)) > 1440).any():
        raise ColumnsError("utc_offset_min", "beyond -1440..1440")
    devices = arr(device_ref, np.object_, "", "device_ref")
    cur = arr(cursor, np.int64, 0, "cursor") if cursor is not None else np.arange(n, dtype=np.int64)
    patient_ids, codes = np.unique(pids, return_inverse=True) if n else (np.array([]), np.array([]))
    codes = codes.astype(np.int64)
    order = np.lexsort((cur, t, codes))
    columns = (
        codes, t, k,
        arr(glucose_mmol_l, np.float64, np.nan, "glucose_mmol_l"), special,
        arr(systolic_mmhg, np.float64, np.nan, "systolic_mmhg"),
        arr(diastolic_mmhg, np.float64, np.nan, "diastolic_mmhg"),
        arr(pulse_per_min, np.float64, np.nan, "pulse_per_min"), meal_codes,
        arr(control_solution, np.bool_, False, "control_solution"),
        arr(bp_flagged, np.bool_, False, "bp_flagged"),
        arr(symptoms, np.bool_, False, "symptoms"), refs, cur, received, offsets, devices,
        np.zeros(n, dtype=np.bool_),
        arr(heart_rate_per_min, np.float64, np.nan, "heart_rate_per_min"),
        arr(spo2_pct, np.float64, np.nan, "spo2_pct"),
        arr(body_temperature_c, np.float64, np.nan, "body_temperature_c"),
        arr(body_weight_kg, np.float64, np.nan, "body_weight_kg"),
    )  # fmt: skip
    cols = ReadingColumns(
        tuple(str(p) for p in patient_ids),
        *(
            np.ascontiguousarray(col[order], dtype=dt)
            for col, dt in zip(columns, _DTYPES, strict=True)
        ),
    )
    if not merge_duplicates:
        return cols
    duplicate = duplicate_rows(cols)
    return cols.take(~duplicate) if duplicate.any() else cols


def duplicate_rows(cols: ReadingColumns) -> BoolArray:
    """Rows that repeat an earlier row (lower cursor) of the same patient with the same kind,
    time, values, context and flags (`IDENTITY`; NaN equals NaN): the same reading sent twice.

    Only rows sharing (patient, time) with a neighbour are compared (rows are sorted by
    patient and time), so the cost is one pass over the sort key.
    """
    n = len(cols)
    out = np.zeros(n, dtype=np.bool_)
    if n < 2:
        return out
    key = cols.key
    same = key[1:] == key[:-1]
    if not same.any():
        return out
    cand = np.zeros(n, dtype=np.bool_)
    cand[1:] |= same
    cand[:-1] |= same
    rows = np.flatnonzero(cand)
    # Bit patterns make NaN compare equal to NaN (values are canonical floats, one NaN).
    parts = [cols.patient[rows]] + [_bits(getattr(cols, name)[rows]) for name in reversed(IDENTITY)]
    order = np.lexsort([cols.cursor[rows], *parts[1:], parts[0]])
    ordered = rows[order]
    equal = np.ones(ordered.shape[0] - 1, dtype=np.bool_)
    for part in parts:
        sorted_part = part[order]
        equal &= sorted_part[1:] == sorted_part[:-1]
    out[ordered[1:][equal]] = True
    return out


def _bits(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if values.dtype == np.float64:
        clean = np.where(np.isnan(values), np.nan, values) + 0.0  # one NaN, no -0.0
        return clean.view(np.int64)
    return values


def _check_codes(name: str, values: npt.NDArray[Any], codes: type[IntEnum]) -> None:
    allowed = np.array([c.value for c in codes], dtype=values.dtype)
    bad = ~np.isin(values, allowed)
    if bad.any():
        raise ColumnsError(name, f"unknown code {int(values[bad][0])}")
