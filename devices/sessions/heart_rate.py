"""Heart-rate stream session (HRS 1.0): subscribe to Heart Rate Measurement 0x2A37, take samples.

After the shared steps (bond, Device Information; a strap has no clock to read), every
notification becomes a `Sample` (heart rate, and the mean RR interval when the strap sends
any) stamped with the hub's receive time; a notification that does not decode is quarantined
with its bytes. The samples go out as `SamplesReady` at once: the hub stores them and makes the
per-minute summaries (`devices.sessions.summary`). There is nothing to back-fill: HRS keeps no
records, so a dropout is a gap in the stream, visible as missing minutes.

The session runs until the link drops (`Outcome.DISCONNECTED`), the strap falls silent for
`silence_timeout_s` (off the chest: `Outcome.TIMEOUT`), or `stream_s` has passed when the hub
set one (pairing only checks that the stream starts: `Outcome.COMPLETE`).
"""

from __future__ import annotations

from devices.codecs.errors import DecodeError
from devices.codecs.heart_rate_measurement import HeartRateMeasurement
from devices.reading import Kind
from devices.sessions import gatt
from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.events import (
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    RecordsReady,
    Sample,
    SamplesReady,
)


class HeartRateSession(BaseSession):
    """One connection's worth of heart-rate stream (see the module docstring)."""

    SUBSCRIPTIONS = (gatt.HEART_RATE_MEASUREMENT,)

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self._stream_until_s: float | None = None

    def tick(self, at: Instant) -> list[Output]:
        """Past `stream_s` the stream is complete; silence otherwise is a timeout."""
        if self._stream_until_s is not None and at.monotonic_s >= self._stream_until_s:
            return self._end(Outcome.COMPLETE, "", at)
        return super().tick(at)

    def _begin_transfer(self, at: Instant) -> list[Output]:
        if self.params.stream_s is not None:
            self._stream_until_s = at.monotonic_s + self.params.stream_s
        self._arm(at)
        return []

    def _arm(self, at: Instant) -> None:
        silence = at.monotonic_s + self.params.silence_timeout_s
        until = self._stream_until_s
        self._deadline_s = silence if until is None else min(silence, until)

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)
        if not isinstance(event, Notified) or event.uuid != gatt.HEART_RATE_MEASUREMENT:
            return []
        if self._stream_until_s is not None or self.transferring:
            self._arm(at)
        try:
            m = HeartRateMeasurement.from_bytes(event.data)
        except DecodeError as exc:
            self._quarantine(event.uuid, event.data, str(exc), at)
            ready = RecordsReady((), None, tuple(self.quarantined))
            self.quarantined = []
            return [ready]
        self._count("samples")
        values: list[tuple[str, float]] = [("heart_rate_per_min", float(m.heart_rate_bpm))]
        if m.rr_intervals_1024ths:
            intervals = m.rr_intervals_s
            values.append(("rr_interval_s", round(sum(intervals) / len(intervals), 4)))
        return [SamplesReady(Kind.HEART_RATE, (Sample(at.utc, tuple(values)),))]
