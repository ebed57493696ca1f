"""The COPY form of a reading is `reading_row` with its JSON columns as compact JSON text."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from devices import Special
from devices.reading import OriginalValue
from ingest import schema
from ingest.rows import COPY_COLUMNS, CopyRows, reading_row
from ingest.store import copy_text, stored_at_text
from tests.ingest.support import make_reading

T0 = datetime(2026, 3, 1, 7, 58, 0, 123_456, tzinfo=UTC)
JSON_COLUMNS = ("status", "values", "original", "context")


def _expected(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(
        json.dumps(row[n], separators=(",", ":"), ensure_ascii=False)
        if n in JSON_COLUMNS
        else row[n]
        for n in COPY_COLUMNS
    )


def test_copy_columns_are_the_readings_columns_without_the_surrogate_id() -> None:
    assert set(COPY_COLUMNS) == {c.name for c in schema.readings.columns} - {"id"}
    assert len(COPY_COLUMNS) == len(set(COPY_COLUMNS))


def test_copy_row_equals_reading_row_with_json_text() -> None:
    glucose = make_reading("gw-1", "patient-1", "SN1", 2)
    readings = [
        glucose,
        make_reading("gw-1", "patient-1", "SN1", 3),
        dataclasses.replace(
            glucose,
            values={"glucose_mmol_l": Special.POSITIVE_INFINITY},
            status=("control_solution", "low_battery"),
            original=(OriginalValue("glucose_mg_dl", Special.NRES, "mg/dL"),),
        ),
        dataclasses.replace(glucose, original=(OriginalValue("glucose_kg_l", 0.00099, "kg/L"),)),
        # Equal context values of different types must not share a cached JSON spelling.
        dataclasses.replace(glucose, context={"n": 1, "ünits": "mmol/L"}),
        dataclasses.replace(glucose, context={"n": True, "ünits": "mmol/L"}),
        dataclasses.replace(glucose, context={"n": 1.0, "ünits": "mmol/L"}),
        dataclasses.replace(glucose, context={"n": 1, "ünits": "mmol/L"}),
    ]
    copy_rows = CopyRows()
    for reading in readings:
        assert copy_rows.row(reading, stored_at=T0) == _expected(reading_row(reading, stored_at=T0))


def test_copy_text_escapes_like_copy_text_format() -> None:
    # PostgreSQL's COPY text format: tab between columns, \N for NULL, backslash escapes for
    # backslash, tab, newline and carriage return; t/f for booleans; ISO times with offset.
    rows = [
        ("a\tb\nc\\d\re", None, True, False, 3, 2.5, datetime(2026, 3, 1, 7, 58, 0, 1, tzinfo=UTC)),
        ("ü", "", None, None, None, None, None),
    ]
    assert copy_text(rows) == (
        b"a\\tb\\nc\\\\d\\re\t\\N\tt\tf\t3\t2.5\t2026-03-01 07:58:00.000001+00:00\n"
        + "ü\t\t\\N\t\\N\t\\N\t\\N\t\\N\n".encode()
    )


def test_stored_at_formatted_once_is_the_same_copy_text() -> None:
    """prepare_batch formats a batch's stored_at once: the COPY text is what the datetime's."""
    copy_rows = CopyRows()
    for moment in (T0, datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=UTC)):
        reading = make_reading("gw-1", "p-1", "SN-1", 2)
        as_text = copy_rows.row(reading, stored_at=stored_at_text(moment))
        assert copy_text([as_text]) == copy_text([copy_rows.row(reading, stored_at=moment)])
