"""Per-minute summaries of a stream (pure): what the hub publishes for high-rate wearables.

A heart-rate strap notifies about once a second and a continuous pulse oximeter about once a
second as well; publishing each sample would cost the patient's uplink and the record store
86,400 rows a day per stream for little clinical use. The hub keeps the raw samples (for a
configurable time) and publishes one reading per closed UTC minute: the mean as the kind's
primary value, the lowest and highest sample, and the sample count.

A minute is closed once the hub's clock has passed its end: samples carry the hub's receive
time, so none can arrive for a closed minute later, and a summary never changes after it was
made (its `reading_id` is the device, the kind and the minute, stored once end to end).
Summaries carry the flag `device_time_absent` (the stream has no device time stamps; the minute
is the hub's) and the context `summary_period_s` = 60.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from devices.reading import DeviceInfo, Kind, Reading, reading_id_for
from devices.sessions.events import Sample

PERIOD: Final = timedelta(minutes=1)
DEVICE_TIME_ABSENT: Final = "device_time_absent"

# Per kind: the primary value, and the names of its lowest and highest sample.
SUMMARIZED: Final[Mapping[Kind, tuple[str, str, str]]] = {
    Kind.HEART_RATE: (
        "heart_rate_per_min",
        "heart_rate_lowest_per_min",
        "heart_rate_highest_per_min",
    ),
    Kind.SPO2: ("spo2_pct", "spo2_lowest_pct", "spo2_highest_pct"),
}
# Secondary values that are averaged alongside (a pulse oximeter's pulse rate).
AVERAGED: Final[Mapping[Kind, tuple[str, ...]]] = {Kind.SPO2: ("pulse_per_min",)}


def minute_of(at: datetime) -> datetime:
    """The UTC minute a moment falls in."""
    return at.astimezone(UTC).replace(second=0, microsecond=0)


def closed_minutes(samples: Iterable[Sample], now: datetime) -> dict[datetime, list[Sample]]:
    """Samples grouped by their minute, only minutes that ended at or before `now`."""
    out: dict[datetime, list[Sample]] = {}
    for sample in samples:
        minute = minute_of(sample.at)
        if minute + PERIOD <= now:
            out.setdefault(minute, []).append(sample)
    return out


@dataclass(frozen=True, slots=True)
class Stream:
    """Whose stream it is."""

    device: DeviceInfo
    patient_id: str
    gateway_id: str
    kind: Kind


def summarize(stream: Stream, minute: datetime, samples: Sequence[Sample]) -> Reading:
    """One minute's summary reading.

    Raises:
        ValueError: no samples, or a kind that is not summarized.
    """
    if not samples:
        raise ValueError("a summary needs at least one sample")
    primary, lowest, highest = SUMMARIZED[stream.kind]
    main = [dict(s.values)[primary] for s in samples if primary in dict(s.values)]
    if not main:
        raise ValueError(f"no {primary} in the samples")
    values: dict[str, float] = {
        primary: round(sum(main) / len(main), 2),
        lowest: min(main),
        highest: max(main),
        "sample_count": float(len(main)),
    }
    for name in AVERAGED.get(stream.kind, ()):
        extra = [dict(s.values)[name] for s in samples if name in dict(s.values)]
        if extra:
            values[name] = round(sum(extra) / len(extra), 2)
    device_time = minute.replace(tzinfo=None).isoformat(timespec="seconds")
    return Reading(
        reading_id=reading_id_for(
            device_id=stream.device.id, kind=stream.kind, sequence=None, device_time=device_time
        ),
        patient_id=stream.patient_id,
        gateway_id=stream.gateway_id,
        device=stream.device,
        kind=stream.kind,
        measured_at=minute,
        received_at=max(s.at for s in samples),
        values=values,
        device_time=device_time,
        context={"summary_period_s": int(PERIOD.total_seconds())},
        status=(DEVICE_TIME_ABSENT,),
    )
