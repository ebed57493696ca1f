"""Readings from a CSV file, for offline evaluation by clinicians and data people.

Columns (header required, order free): `patient_id,kind,measured_at,glucose_mmol_l,
systolic_mmhg,diastolic_mmhg,pulse_per_min,meal,flags`, optionally `reading_id`. `kind` is
`glucose`, `blood_pressure` or `ketone` (kept, never evaluated as glucose); empty cells where a
column does not apply; `flags` is a `;`-separated list (`control_solution`, `symptoms`,
`body_movement`, ...). A glucose cell may hold a meter special: `HI`/`+INF`, `LO`/`-INF`,
`NaN`, `NRes`. Any bad cell raises `ReadingInputError` naming its line and column.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np

from alerts.engine.errors import ReadingInputError
from alerts.rules.columns import KindCode, MealCode, ReadingColumns, SpecialCode, build_columns

COLUMNS: Final = (
    "patient_id", "kind", "measured_at", "glucose_mmol_l", "systolic_mmhg", "diastolic_mmhg",
    "pulse_per_min", "meal", "flags",
)  # fmt: skip
OPTIONAL_COLUMNS: Final = ("reading_id",)
KINDS: Final = {
    "glucose": KindCode.GLUCOSE,
    "blood_pressure": KindCode.BLOOD_PRESSURE,
    "ketone": KindCode.KETONE,
}
MEALS: Final = {
    "": MealCode.NONE,
    "preprandial": MealCode.PREPRANDIAL,
    "postprandial": MealCode.POSTPRANDIAL,
    "fasting": MealCode.FASTING,
    "casual": MealCode.CASUAL,
    "bedtime": MealCode.BEDTIME,
}
SPECIALS: Final = {
    "hi": SpecialCode.HI,
    "+inf": SpecialCode.HI,
    "lo": SpecialCode.LO,
    "-inf": SpecialCode.LO,
    "nan": SpecialCode.INVALID,
    "nres": SpecialCode.INVALID,
    "reserved": SpecialCode.INVALID,
}
# Flags that make a cuff reading unfit for averaging protocols (docs/clinical-rules.md section 4).
BP_QUALITY_FLAGS: Final = frozenset(
    {"body_movement", "cuff_fit_loose", "cuff_too_loose", "improper_position"}
)
RANGES: Final = {
    "glucose_mmol_l": (0.0, 100.0),
    "systolic_mmhg": (0.0, 400.0),
    "diastolic_mmhg": (0.0, 300.0),
    "pulse_per_min": (0.0, 350.0),
}
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_FLAG: Final = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def read_csv(path: Path) -> ReadingColumns:
    """Read and validate a readings CSV file.

    Raises:
        ReadingInputError: a missing or unknown column, or a bad cell (line and column named).
        OSError: the file cannot be read.
    """
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            return parse_rows(reader)
        except UnicodeDecodeError as exc:
            raise ReadingInputError(reader.line_num + 1, "(file)", "not UTF-8 text") from exc
        except csv.Error as exc:
            raise ReadingInputError(reader.line_num, "(row)", f"not CSV: {exc}") from exc


def parse_rows(rows: Iterable[list[str]]) -> ReadingColumns:
    """Validate CSV rows (the first is the header) into columns.

    Raises:
        ReadingInputError: see `read_csv`.
    """
    it = iter(rows)
    header = next(it, None)
    if header is None:
        raise ReadingInputError(1, "(header)", "the file is empty, a header row is required")
    names = [h.strip() for h in header]
    for name in names:
        if names.count(name) > 1:
            raise ReadingInputError(1, name, "column appears twice")
        if name not in COLUMNS and name not in OPTIONAL_COLUMNS:
            raise ReadingInputError(1, name, "unknown column")
    for name in COLUMNS:
        if name not in names:
            raise ReadingInputError(1, name, "missing column")
    cols: dict[str, list[object]] = {k: [] for k in (*COLUMNS, "special", "line", "ref")}
    for line, raw in enumerate(it, start=2):
        if not raw or all(not c.strip() for c in raw):
            continue
        if len(raw) != len(names):
            raise ReadingInputError(line, "(row)", f"{len(raw)} cells, header has {len(names)}")
        cell = dict(zip(names, (c.strip() for c in raw), strict=True))
        _parse_row(line, cell, cols)
    flags = cols["flags"]
    return build_columns(
        [str(v) for v in cols["patient_id"]],
        np.array(cols["measured_at"], dtype=np.int64),
        np.array(cols["kind"], dtype=np.int8),
        glucose_mmol_l=np.array(cols["glucose_mmol_l"], dtype=np.float64),
        glucose_special=np.array(cols["special"], dtype=np.int8),
        systolic_mmhg=np.array(cols["systolic_mmhg"], dtype=np.float64),
        diastolic_mmhg=np.array(cols["diastolic_mmhg"], dtype=np.float64),
        pulse_per_min=np.array(cols["pulse_per_min"], dtype=np.float64),
        meal=np.array(cols["meal"], dtype=np.int8),
        control_solution=np.array([("control_solution" in f) for f in flags], dtype=bool),  # type: ignore[operator]
        bp_flagged=np.array([bool(BP_QUALITY_FLAGS & f) for f in flags], dtype=bool),  # type: ignore[operator]
        symptoms=np.array([("symptoms" in f) for f in flags], dtype=bool),  # type: ignore[operator]
        reading_ref=[str(r) for r in cols["ref"]],
        cursor=np.array(cols["line"], dtype=np.int64),
    )


def _parse_row(line: int, cell: dict[str, str], cols: dict[str, list[object]]) -> None:
    pid = cell["patient_id"]
    if not _ID.match(pid):
        raise ReadingInputError(line, "patient_id", f"{pid!r} is not a patient id")
    kind = KINDS.get(cell["kind"])
    if kind is None:
        raise ReadingInputError(line, "kind", f"{cell['kind']!r} is not one of {sorted(KINDS)}")
    measured = _time(line, cell["measured_at"])
    glucose, special = _glucose(line, cell["glucose_mmol_l"], kind)
    sys_ = _number(line, "systolic_mmhg", cell["systolic_mmhg"])
    dia = _number(line, "diastolic_mmhg", cell["diastolic_mmhg"])
    pulse = _number(line, "pulse_per_min", cell["pulse_per_min"])
    if kind == KindCode.BLOOD_PRESSURE:
        for name, value in (("systolic_mmhg", sys_), ("diastolic_mmhg", dia)):
            if math.isnan(value):
                raise ReadingInputError(line, name, "required for blood_pressure")
    elif not (math.isnan(sys_) and math.isnan(dia) and math.isnan(pulse)):
        raise ReadingInputError(line, "systolic_mmhg", "pressures only on blood_pressure rows")
    meal = MEALS.get(cell["meal"])
    if meal is None:
        raise ReadingInputError(line, "meal", f"{cell['meal']!r} is not one of {sorted(MEALS)}")
    flags = frozenset(f.strip() for f in cell["flags"].split(";") if f.strip())
    for flag in flags:
        if not _FLAG.match(flag):
            raise ReadingInputError(line, "flags", f"{flag!r} is not a snake_case flag")
    ref = cell.get("reading_id") or f"line-{line}"
    items = (pid, kind, measured, glucose, sys_, dia, pulse, meal, flags, special, line, ref)
    for key, item in zip((*COLUMNS, "special", "line", "ref"), items, strict=True):
        cols[key].append(item)


def _time(line: int, text: str) -> int:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ReadingInputError(line, "measured_at", f"{text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        raise ReadingInputError(line, "measured_at", f"{text!r} has no UTC offset")
    seconds = int(moment.timestamp())
    if not 946_684_800 <= seconds < 946_684_800 + (1 << 32):
        raise ReadingInputError(line, "measured_at", f"{text!r} is before 2000 or after 2136")
    return seconds


def _number(line: int, column: str, text: str) -> float:
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ReadingInputError(line, column, f"{text!r} is not a number") from None
    lo, hi = RANGES[column]
    if not lo <= value <= hi:  # also rejects nan/inf spelled as numbers
        raise ReadingInputError(line, column, f"{text} is outside {lo:g}..{hi:g}")
    return value


def _glucose(line: int, text: str, kind: KindCode) -> tuple[float, SpecialCode]:
    if kind != KindCode.GLUCOSE:
        if text and kind != KindCode.KETONE:
            raise ReadingInputError(line, "glucose_mmol_l", "only on glucose rows")
        return math.nan, SpecialCode.NONE
    if not text:
        raise ReadingInputError(line, "glucose_mmol_l", "required for glucose")
    special = SPECIALS.get(text.lower())
    if special is not None:
        return math.nan, special
    return _number(line, "glucose_mmol_l", text), SpecialCode.NONE
