"""Pure building of InfluxDB line protocol points from stored readings.

Point shape (docs/architecture.md, "Record store and time-series mirror"): measurement = reading
kind, tags = `patient_id` and `device_id`, fields = the reading's numeric values in canonical units,
timestamp = `measured_at` in milliseconds (the mirror writes with precision ``ms``).

Lines are formatted here as strings rather than through influxdb-client's `Point` objects:
pre-formatted line protocol is several times faster (docs/architecture.md, budgets). Escaping
follows the InfluxDB line protocol reference ("Special characters"): measurement escapes comma and
space; tag keys, tag values and field keys escape comma, equals sign and space. IEEE 11073 special
values (``"+INF"``, ``"NaN"``...) are not numbers and are left out of the point; they stay in the
record store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from devices.sample_wire import SampleBatch

_MEASUREMENT_ESCAPES: Final = str.maketrans({",": r"\,", " ": r"\ ", "\\": "\\\\"})
_KEY_ESCAPES: Final = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\\": "\\\\"})


@dataclass(frozen=True, slots=True)
class StoredReading:
    """What the mirror needs of one stored reading."""

    id: int
    kind: str
    patient_id: str
    device_id: str
    measured_at: datetime
    values: Mapping[str, object]


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _field(value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return repr(number)


def line_for(reading: StoredReading) -> str | None:
    """Return the line protocol of one reading, or None when it has no numeric value."""
    fields = []
    for name in sorted(reading.values):
        text = _field(reading.values[name])
        if text is not None:
            fields.append(f"{name.translate(_KEY_ESCAPES)}={text}")
    if not fields:
        return None
    return (
        f"{reading.kind.translate(_MEASUREMENT_ESCAPES)}"
        f",device_id={reading.device_id.translate(_KEY_ESCAPES)}"
        f",patient_id={reading.patient_id.translate(_KEY_ESCAPES)}"
        f" {','.join(fields)} {epoch_ms(reading.measured_at)}"
    )


def lines_for(readings: Iterable[StoredReading]) -> tuple[list[str], int]:
    """Return the lines of a batch and how many readings had no numeric value to write."""
    lines: list[str] = []
    skipped = 0
    for reading in readings:
        text = line_for(reading)
        if text is None:
            skipped += 1
        else:
            lines.append(text)
    return lines, skipped


def sample_measurement(kind: str) -> str:
    """The measurement raw samples of a kind go to (`heart_rate_samples`, `spo2_samples`): kept
    apart from the kind's readings (the minute summaries), which dashboards and the mirror's
    readers take as one point per reading."""
    return f"{kind}_samples"


def sample_lines(batches: Sequence[SampleBatch]) -> list[str]:
    """Line protocol of raw-sample batches: one point per sample (tags `patient_id`,
    `device_id`; the sample's values as fields, a missing value left out; time = the batch's
    start + the sample's offset, ms)."""
    lines: list[str] = []
    for batch in batches:
        head = (
            f"{sample_measurement(batch.kind.value).translate(_MEASUREMENT_ESCAPES)}"
            f",device_id={batch.device_id.translate(_KEY_ESCAPES)}"
            f",patient_id={batch.patient_id.translate(_KEY_ESCAPES)} "
        )
        names = sorted(batch.values)
        keys = [name.translate(_KEY_ESCAPES) for name in names]
        columns = [batch.values[name] for name in names]
        for i, offset in enumerate(batch.dt_ms):
            fields = [
                f"{key}={column[i]!r}"
                for key, column in zip(keys, columns, strict=True)
                if column[i] is not None
            ]
            if fields:
                lines.append(f"{head}{','.join(fields)} {batch.t0_ms + offset}")
    return lines
