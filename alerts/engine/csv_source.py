"""Readings from a CSV file, for offline evaluation by clinicians and data people.

Columns (header required, order free): `patient_id,kind,measured_at,glucose_mmol_l,
systolic_mmhg,diastolic_mmhg,pulse_per_min,meal,flags`, optionally `reading_id`, `received_at`
(when the reading reached the record; default `measured_at`), `device_id` and the wearables'
value columns `heart_rate_per_min`, `spo2_pct`, `body_temperature_c`, `body_weight_kg`. `kind`
is `glucose`, `blood_pressure`, `ketone` (kept, never evaluated as glucose), `cgm_glucose`
(sensor glucose in `glucose_mmol_l`), `heart_rate`, `spo2` (its pulse in `pulse_per_min`),
`body_temperature` or `body_weight`, each with its own value column; empty cells where a
column does not apply; `flags` is a `;`-separated list (`control_solution`, `symptoms`,
`body_movement`, ...). A glucose cell may hold a meter special: `HI`/`+INF`, `LO`/`-INF`,
`NaN`, `NRes`. Times need a UTC offset: a numeric one (`+08:00`) is also the reading's local
offset for protocol windows, `Z` says UTC only. The file is UTF-8, with or without a
byte-order mark (spreadsheet exports). Rows are taken in arrival order (`received_at`, then
line), the order the record store would have committed them in, as the engine does. A reading
counts once: a repeated `reading_id` keeps its first arrival (as the record store does),
identical rows are merged by `build_columns` (the first arrival counts). Any bad
cell raises `ReadingInputError` naming its physical line and column, with long values shortened.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

import numpy as np

from alerts.engine.errors import ReadingInputError
from alerts.rules.columns import (
    KIND_BY_NAME,
    NO_OFFSET,
    KindCode,
    MealCode,
    ReadingColumns,
    SpecialCode,
    build_columns,
)

COLUMNS: Final = (
    "patient_id", "kind", "measured_at", "glucose_mmol_l", "systolic_mmhg", "diastolic_mmhg",
    "pulse_per_min", "meal", "flags",
)  # fmt: skip
VITAL_COLUMNS: Final = ("heart_rate_per_min", "spo2_pct", "body_temperature_c", "body_weight_kg")
OPTIONAL_COLUMNS: Final = ("reading_id", "received_at", "device_id", *VITAL_COLUMNS)
SHOWN_CHARS: Final = 40  # a cell longer than this is shortened in error messages
# The value column each wearable kind requires (and the only kind it may appear on).
VITAL_OF_KIND: Final = {
    KindCode.HEART_RATE: "heart_rate_per_min",
    KindCode.SPO2: "spo2_pct",
    KindCode.BODY_TEMPERATURE: "body_temperature_c",
    KindCode.BODY_WEIGHT: "body_weight_kg",
}
GLUCOSE_KINDS: Final = frozenset({KindCode.GLUCOSE, KindCode.CGM_GLUCOSE})
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
# Cuff measurement-status flags (Bluetooth Blood Pressure Service) that make a reading unfit for
# averaging protocols (docs/clinical-rules.md section 4).
BP_QUALITY_FLAGS: Final = frozenset(
    {"body_movement", "cuff_fit_loose", "cuff_too_loose", "improper_position"}
)
RANGES: Final = {
    "glucose_mmol_l": (0.0, 100.0),
    "systolic_mmhg": (0.0, 400.0),
    "diastolic_mmhg": (0.0, 300.0),
    "pulse_per_min": (0.0, 350.0),
    "heart_rate_per_min": (0.0, 350.0),
    "spo2_pct": (0.0, 100.0),
    "body_temperature_c": (20.0, 50.0),
    "body_weight_kg": (0.0, 700.0),
}
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_FLAG: Final = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


def shown(text: str) -> str:
    """`text` for an error message: quoted, and shortened when long."""
    if len(text) <= SHOWN_CHARS:
        return repr(text)
    return f"{text[:SHOWN_CHARS]!r}... ({len(text):,} characters)"


def _column(name: str) -> str:
    return name if len(name) <= SHOWN_CHARS and name.isprintable() else shown(name)


def read_csv(path: Path) -> ReadingColumns:
    """Read and validate a readings CSV file.

    Raises:
        ReadingInputError: the file is missing or unreadable (line 0), a byte is not UTF-8
            (its line), a missing or unknown column, or a bad cell (line and column named).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReadingInputError(0, "(file)", "no such file") from None
    except IsADirectoryError:
        raise ReadingInputError(0, "(file)", "is a directory, not a file") from None
    except OSError as exc:
        raise ReadingInputError(0, "(file)", f"cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start : exc.start + 1].hex()
        raise ReadingInputError(line, "(file)", f"byte 0x{byte} is not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        return parse_rows(_numbered(reader))
    except csv.Error as exc:
        raise ReadingInputError(reader.line_num, "(row)", f"not CSV: {exc}") from exc


def _numbered(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Rows with the physical line each starts on (a quoted cell may span lines)."""
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1  # type: ignore[attr-defined]


def parse_rows(rows: Iterable[tuple[int, list[str]]]) -> ReadingColumns:
    """Validate (line number, CSV row) pairs, the first the header, into columns.

    Raises:
        ReadingInputError: see `read_csv`.
    """
    it = iter(rows)
    first = next(it, None)
    if first is None:
        raise ReadingInputError(1, "(header)", "the file is empty, a header row is required")
    header_line, header = first
    names = [h.strip() for h in header]
    for name in names:
        if names.count(name) > 1:
            raise ReadingInputError(header_line, _column(name), "column appears twice")
        if name not in COLUMNS and name not in OPTIONAL_COLUMNS:
            raise ReadingInputError(header_line, _column(name), "unknown column")
    for name in COLUMNS:
        if name not in names:
            raise ReadingInputError(header_line, name, "missing column")
    parsed: dict[str, list[object]] = {k: [] for k in (*COLUMNS, *_EXTRA)}
    for line, raw in it:
        if not raw or all(not c.strip() for c in raw):
            continue
        if len(raw) != len(names):
            raise ReadingInputError(line, "(row)", f"{len(raw)} cells, header has {len(names)}")
        cell = dict(zip(names, (c.strip() for c in raw), strict=True))
        ref = cell.get("reading_id") or f"line-{line}"
        _parse_row(line, cell, parsed, ref)
    cols = _in_arrival_order(parsed)
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
        cursor=np.arange(len(cols["line"]), dtype=np.int64),
        received_at_s=np.array(cols["received"], dtype=np.int64),
        utc_offset_min=np.array(cols["offset"], dtype=np.int16),
        device_ref=[str(d) for d in cols["device"]],
        heart_rate_per_min=np.array(cols["heart_rate_per_min"], dtype=np.float64),
        spo2_pct=np.array(cols["spo2_pct"], dtype=np.float64),
        body_temperature_c=np.array(cols["body_temperature_c"], dtype=np.float64),
        body_weight_kg=np.array(cols["body_weight_kg"], dtype=np.float64),
    )


_EXTRA: Final = ("special", "line", "ref", "received", "offset", "device", *VITAL_COLUMNS)


def _in_arrival_order(cols: dict[str, list[object]]) -> dict[str, list[object]]:
    """The rows in the order the record store would have committed them (by `received_at`,
    then line), each `reading_id` once (its first arrival, as the store keeps it).

    That order is the columns' cursor, as the store's row id is the engine's: it decides which
    of two identical readings counts and which reading of an instant is the newest (an
    episode's anchor), so the offline path and the engine raise the same alerts.
    """
    received = np.array(cols["received"], dtype=np.int64)
    lines = np.array(cols["line"], dtype=np.int64)
    seen: set[object] = set()
    keep: list[int] = []
    for row in np.lexsort((lines, received)).tolist():
        ref = cols["ref"][row]
        if ref not in seen:  # a repeated reading_id: the same reading sent again
            seen.add(ref)
            keep.append(row)
    return {name: [values[row] for row in keep] for name, values in cols.items()}


def _parse_row(line: int, cell: dict[str, str], cols: dict[str, list[object]], ref: str) -> None:
    pid = cell["patient_id"]
    if not _ID.match(pid):
        raise ReadingInputError(line, "patient_id", f"{shown(pid)} is not a patient id")
    kind = KIND_BY_NAME.get(cell["kind"])
    if kind is None:
        raise ReadingInputError(
            line, "kind", f"{shown(cell['kind'])} is not one of {sorted(KIND_BY_NAME)}"
        )
    measured, offset = _time(line, "measured_at", cell["measured_at"])
    received = measured
    if cell.get("received_at"):
        received, _ = _time(line, "received_at", cell["received_at"])
    device = cell.get("device_id", "")
    if device and not _ID.match(device):
        raise ReadingInputError(line, "device_id", f"{shown(device)} is not a device id")
    if len(ref) > 64:
        raise ReadingInputError(line, "reading_id", f"{shown(ref)} is longer than 64 characters")
    glucose, special = _glucose(line, cell["glucose_mmol_l"], kind)
    sys_ = _number(line, "systolic_mmhg", cell["systolic_mmhg"])
    dia = _number(line, "diastolic_mmhg", cell["diastolic_mmhg"])
    pulse = _number(line, "pulse_per_min", cell["pulse_per_min"])
    if kind == KindCode.BLOOD_PRESSURE:
        for name, value in (("systolic_mmhg", sys_), ("diastolic_mmhg", dia)):
            if math.isnan(value):
                raise ReadingInputError(line, name, "required for blood_pressure")
    elif not (math.isnan(sys_) and math.isnan(dia)):
        raise ReadingInputError(line, "systolic_mmhg", "pressures only on blood_pressure rows")
    elif not math.isnan(pulse) and kind != KindCode.SPO2:
        raise ReadingInputError(line, "pulse_per_min", "only on blood_pressure and spo2 rows")
    vitals = {name: _number(line, name, cell.get(name, "")) for name in VITAL_COLUMNS}
    for name, value in vitals.items():
        own = VITAL_OF_KIND.get(kind) == name
        if own and math.isnan(value):
            raise ReadingInputError(line, name, f"required for {cell['kind']}")
        if not own and not math.isnan(value):
            raise ReadingInputError(line, name, f"not on {cell['kind']} rows")
    meal = MEALS.get(cell["meal"])
    if meal is None:
        raise ReadingInputError(
            line, "meal", f"{shown(cell['meal'])} is not one of {sorted(MEALS)}"
        )
    flags = frozenset(f.strip() for f in cell["flags"].split(";") if f.strip())
    for flag in flags:
        if not _FLAG.match(flag):
            raise ReadingInputError(line, "flags", f"{shown(flag)} is not a snake_case flag")
    items = (
        pid, kind, measured, glucose, sys_, dia, pulse, meal, flags, special, line, ref,
        received, offset, device, *vitals.values(),
    )  # fmt: skip
    for key, item in zip((*COLUMNS, *_EXTRA), items, strict=True):
        cols[key].append(item)


def _time(line: int, column: str, text: str) -> tuple[int, int]:
    """Seconds since the epoch, and the local offset in minutes (NO_OFFSET for `Z`)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReadingInputError(line, column, f"{shown(text)} is not ISO 8601") from None
    offset = moment.utcoffset()
    if offset is None:
        raise ReadingInputError(line, column, f"{shown(text)} has no UTC offset")
    seconds = int(moment.timestamp())
    if not 946_684_800 <= seconds < 946_684_800 + (1 << 32):
        raise ReadingInputError(line, column, f"{shown(text)} is before 2000 or after 2136")
    if text.rstrip().upper().endswith("Z"):
        return seconds, NO_OFFSET
    return seconds, int(offset.total_seconds() // 60)


def _number(line: int, column: str, text: str) -> float:
    if not text:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise ReadingInputError(line, column, f"{shown(text)} is not a number") from None
    lo, hi = RANGES[column]
    if not lo <= value <= hi:  # also rejects nan/inf spelled as numbers
        raise ReadingInputError(line, column, f"{shown(text)} is outside {lo:g}..{hi:g}")
    return value


def _glucose(line: int, text: str, kind: KindCode) -> tuple[float, SpecialCode]:
    if kind not in GLUCOSE_KINDS:
        if text and kind != KindCode.KETONE:
            raise ReadingInputError(line, "glucose_mmol_l", "only on glucose rows")
        return math.nan, SpecialCode.NONE
    if not text:
        raise ReadingInputError(line, "glucose_mmol_l", "required for glucose")
    special = SPECIALS.get(text.lower())
    if special is not None:
        return math.nan, special
    return _number(line, "glucose_mmol_l", text), SpecialCode.NONE
