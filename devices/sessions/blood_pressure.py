"""Blood-pressure cuff session: take what the cuff indicates on connect, dedupe re-sends.

Cuffs push their readings as Blood Pressure Measurement indications once the CCCD is written
(docs/device-profiles.md 2.5, quirk 11); there is no record access. Some replay their whole memory
on every transfer (Beurer, SBM69) or re-send the previous reading (quirk 16), so a reading whose
`reading_id` was already seen this session is counted as a duplicate and dropped here, and the
gateway's outbox drops those it stored in earlier sessions.

Each indication is emitted at once as its own `RecordsReady` (docs/reliability.md: the stack has
already confirmed the indication to the cuff, so the reading must be committed immediately,
without batching). The session ends when the cuff disconnects (A&D cuffs do once their data is
sent) or stays silent for `silence_timeout_s`; both are normal ends, not failures.
"""

from __future__ import annotations

from devices.codecs.blood_pressure_measurement import BloodPressureMeasurement
from devices.codecs.errors import DecodeError
from devices.errors import ReadingValidationError
from devices.sessions import build, gatt
from devices.sessions.base import BaseSession, SessionParams
from devices.sessions.events import (
    DeviceCursor,
    Disconnected,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Outcome,
    Output,
    RecordsReady,
)


class BloodPressureSession(BaseSession):
    """One connection's worth of cuff indications (see the module docstring)."""

    SUBSCRIPTIONS = (gatt.BLOOD_PRESSURE_MEASUREMENT,)

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self._seen: set[str] = set()
        self._received = 0

    def feed(self, event: Input, at: Instant) -> list[Output]:
        """As `BaseSession.feed`; a disconnect after the transfer began is the normal end."""
        if isinstance(event, Disconnected) and self._transferring and not self.ended:
            return self._finish(at, disconnect=False)
        return super().feed(event, at)

    def tick(self, at: Instant) -> list[Output]:
        """Silence after the subscription means the cuff has sent all it had."""
        if self._transferring and self.deadline_s is not None and at.monotonic_s >= self.deadline_s:
            return self._finish(at, disconnect=True)
        return super().tick(at)

    @property
    def _transferring(self) -> bool:
        # An indication can arrive while later CCCDs are still being written.
        return self._received > 0 or self.transferring

    def _finish(self, at: Instant, *, disconnect: bool) -> list[Output]:
        outcome = Outcome.COMPLETE if self._received else Outcome.NOTHING_NEW
        return self._end(outcome, "", at, disconnect=disconnect)

    def _begin_transfer(self, at: Instant) -> list[Output]:
        self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
        return []

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)
        if not isinstance(event, Notified) or event.uuid != gatt.BLOOD_PRESSURE_MEASUREMENT:
            return []
        self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
        self._received += 1
        try:
            m = BloodPressureMeasurement.from_bytes(event.data, profile=self.params.profile)
            assert self.device is not None
            reading = build.blood_pressure_reading(
                m,
                device=self.device,
                patient_id=self.params.patient_id,
                gateway_id=self.params.gateway_id,
                clock=self.clock,
                received_at=at.utc,
                local_utc_offset_min=self.params.local_utc_offset_min,
            )
        except (DecodeError, ReadingValidationError) as exc:
            self._quarantine(event.uuid, event.data, str(exc), at)
            ready = RecordsReady((), None, tuple(self.quarantined))
            self.quarantined = []
            return [ready]
        if reading.reading_id in self._seen:
            self._count("duplicates")
            return []
        self._seen.add(reading.reading_id)
        self._count("readings")
        return [RecordsReady((reading,), DeviceCursor(None, reading.device_time))]
