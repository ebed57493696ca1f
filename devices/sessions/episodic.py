"""Sessions for devices that indicate their readings on connect: cuffs, thermometers, scales.

They push readings as indications of one measurement characteristic once its CCCD is written
(BLS 1.0, HTS 1.0, WSS 1.0); there is no record access. Some replay their whole memory on every
transfer (Beurer, SBM69) or re-send the previous reading (quirk 16), so a reading whose
`reading_id` was already seen this session is counted as a duplicate and dropped here, and the
gateway's outbox drops those it stored in earlier sessions.

Each indication is emitted at once as its own `RecordsReady` (docs/reliability.md: the stack has
already confirmed the indication to the device, so the reading must be committed immediately,
without batching). The session ends when the device disconnects (A&D cuffs do once their data
is sent) or stays silent for `silence_timeout_s`; both are normal ends, not failures.
Subclasses name the characteristic and build the reading.
"""

from __future__ import annotations

from abc import abstractmethod
from datetime import datetime

from devices.codecs.errors import DecodeError
from devices.errors import ReadingValidationError
from devices.reading import Reading
from devices.sessions import gatt
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


class IndicationSession(BaseSession):
    """One connection's worth of indicated readings (see the module docstring)."""

    MEASUREMENT: str = ""

    def __init__(self, params: SessionParams, inventory: gatt.GattInventory) -> None:
        super().__init__(params, inventory)
        self.SUBSCRIPTIONS = (self.MEASUREMENT,)
        self._seen: set[str] = set()
        self._received = 0

    def feed(self, event: Input, at: Instant) -> list[Output]:
        """As `BaseSession.feed`; a disconnect after the transfer began is the normal end."""
        if isinstance(event, Disconnected) and self._transferring and not self.ended:
            return self._finish(at, disconnect=False)
        return super().feed(event, at)

    def tick(self, at: Instant) -> list[Output]:
        """Silence after the subscription means the device has sent all it had."""
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

    @abstractmethod
    def _reading(self, data: bytes, received_at: datetime) -> Reading:
        """The canonical reading of one indication.

        Raises:
            DecodeError: the bytes do not decode.
            ReadingValidationError: a value ingest would reject.
        """

    def _on_transfer_input(self, event: Input, at: Instant) -> list[Output]:
        if isinstance(event, OperationFailed):
            return self._end(Outcome.DEVICE_ERROR, f"{event.uuid}: {event.reason}", at)
        if not isinstance(event, Notified) or event.uuid != self.MEASUREMENT:
            return []
        self._deadline_s = at.monotonic_s + self.params.silence_timeout_s
        self._received += 1
        try:
            assert self.device is not None
            reading = self._reading(event.data, at.utc)
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
