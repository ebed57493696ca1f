"""The gateway's device side: pair, sync each paired device, store what sessions conclude.

`Gateway` joins the pieces: the `Connector` (bleak), the sans-IO sessions (through
`SessionLink`), the pairing `Registry` and the `Outbox`. Records are stored, with the device
cursor, in one outbox transaction when a session concludes them, before anything is published;
`wake` then tells the publish loop there is work. The page and the CLI call `discover`, `pair`,
`unpair` and `devices`; `device_loop` syncs every paired device on a schedule.

Streams (heart-rate straps): a stream session lasts as long as the link, so `sync_round` starts
it as a task of its own (one per device) instead of waiting for it, and the next round starts
it again after a dropout. Its samples go to the `SampleStore`, which makes the per-minute
summaries that are published; `device_loop` closes the minutes of streams that went quiet.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bleak.exc import BleakError

from devices.reading import DeviceInfo, Reading
from devices.sessions import (
    BaseSession,
    BloodPressureSession,
    CgmSession,
    Event,
    GattInventory,
    GlucoseSession,
    HeartRateSession,
    Outcome,
    PulseOximeterSession,
    RecordsReady,
    SamplesReady,
    SessionEnded,
    SessionParams,
    ThermometerSession,
    WeightScaleSession,
)
from devices.sessions.summary import Stream
from gateway.ble import SessionLink, inventory_of
from gateway.cancelling import checkpoint
from gateway.connections import ConnectFailedError, Connector, Seen
from gateway.db import is_disk_full
from gateway.errors import InvalidInputError, OutboxFullError
from gateway.failpoints import BEFORE_COMMIT, Failpoints
from gateway.outbox import Outbox
from gateway.progress import Step, StepSink
from gateway.quirks import profile_for
from gateway.registry import PairedDevice, Registry, check_patient_id, check_user_patients
from gateway.samples import SampleStore

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SESSIONS: dict[str, type[BaseSession]] = {
    "glucose": GlucoseSession,
    "blood_pressure": BloodPressureSession,
    "heart_rate": HeartRateSession,
    "cgm_glucose": CgmSession,
    "body_temperature": ThermometerSession,
    "body_weight": WeightScaleSession,
    "spo2": PulseOximeterSession,
}
STREAM_KINDS = frozenset({"heart_rate", "spo2"})  # sessions that last as long as the link
# Devices that keep records: synced every `meter_interval_s`.
RECORD_KINDS = frozenset({"glucose", "cgm_glucose"})
OUTBOX_FULL = "outbox_full"
UNREACHABLE = "unreachable"
PAIRED_OUTCOMES = frozenset(
    {
        Outcome.COMPLETE,
        Outcome.NOTHING_NEW,
        Outcome.DISCONNECTED,
        Outcome.TIMEOUT,
        Outcome.DEVICE_ERROR,
        OUTBOX_FULL,
    }
)


@dataclass(frozen=True, slots=True)
class SessionTuning:
    """Timing knobs passed to every session (from the settings)."""

    pace_s: float = 0.5
    operation_timeout_s: float = 30.0
    silence_timeout_s: float = 10.0
    clock_set_threshold_s: float = 120.0
    pair_stream_s: float = 3.0  # pairing a stream device checks that the stream starts


@dataclass(frozen=True, slots=True)
class SyncResult:
    """How one session with a device ended, and how many readings it stored."""

    outcome: str
    detail: str = ""
    stored: int = 0
    device: PairedDevice | None = None

    @property
    def identified(self) -> bool:
        """True once Device Information gave the device its stable id."""
        return self.device is not None and not self.device.device_id.startswith(_UNIDENTIFIED)


@dataclass
class Gateway:
    """The device side of the hub (see the module docstring)."""

    gateway_id: str
    connector: Connector
    registry: Registry
    outbox: Outbox
    clock: Clock
    utc_offset_min: Callable[[datetime], int]
    tuning: SessionTuning = field(default_factory=SessionTuning)
    failpoints: Failpoints = field(default_factory=Failpoints)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    last_seen: dict[str, Seen] = field(default_factory=dict)
    samples: SampleStore | None = None
    streams: dict[str, asyncio.Task[SyncResult]] = field(default_factory=dict)
    # Sync schedule on the monotonic clock: the wall clock (`clock`) may be stepped back by
    # hours (a hub that booted without the time, then NTP), which must not stall the meters.
    monotonic: Callable[[], float] = time.monotonic
    _next_sync: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------------------- pairing

    async def discover(self, duration_s: float) -> list[Seen]:
        """Scan for glucose meters and blood-pressure cuffs; the closest first."""
        self.last_seen = await self.connector.scan(duration_s)
        return sorted(self.last_seen.values(), key=lambda s: -s.rssi)

    async def pair(
        self,
        address: str,
        patient_id: str,
        *,
        passkey: int | None = None,
        scan_s: float = 3.0,
        user_patients: Mapping[int, str] | None = None,
        on_step: StepSink | None = None,
    ) -> SyncResult:
        """Bond with the device at `address`, identify it, assign it to `patient_id`, and
        fetch what it holds. A cuff two people share maps each device user index to a patient
        (`user_patients`, e.g. ``{1: "p-1", 2: "p-2"}``); readings of other users are then
        quarantined rather than given to `patient_id`. `on_step` is told each step reached
        (looking, connecting, bonding, reading with the measurements received, saving).

        Raises:
            InvalidInputError: bad `patient_id`, `user_patients` or `passkey`, or no health
                device at `address`.
        """
        check_patient_id(patient_id)
        users = check_user_patients(user_patients)
        if passkey is not None and not 0 <= passkey <= 999_999:
            raise InvalidInputError("passkey", "must be 6 digits")
        seen = self.last_seen.get(address)
        if seen is None:
            if on_step is not None:
                on_step(Step.LOOKING, 0)
            seen = (await self.connector.scan(scan_s)).get(address)
        if seen is None:
            raise InvalidInputError("address", f"no glucose meter or cuff advertising at {address}")
        provisional = PairedDevice(
            device=_placeholder(address),
            address=address,
            kind=seen.kind,
            patient_id=patient_id,
            paired_at=self.clock(),
            name=seen.name,
            user_patients=users,
        )
        result = await self._session(
            seen, provisional, passkey=passkey, pairing=True, on_step=on_step
        )
        # Once bonded and identified the device is paired, even if the transfer then failed:
        # the next sync goes on from the cursor (moved only past records already stored).
        if result.outcome in PAIRED_OUTCOMES and result.identified and result.device is not None:
            self.registry.add(result.device)
            self.registry.record_sync(
                result.device.device_id, self.clock(), result.outcome, address
            )
        return result

    async def unpair(self, device_id: str, *, scan_s: float = 2.0) -> PairedDevice:
        """Forget the bond (when the device is in reach) and remove the assignment.

        Raises:
            UnknownDeviceError: not paired.
        """
        paired = self.registry.get(device_id)
        seen = (await self.connector.scan(scan_s)).get(paired.address)
        if seen is not None:
            try:
                async with self.connector.connect(seen.device, lambda c: None) as client:
                    await client.unpair()
            except (BleakError, TimeoutError) as exc:
                log.info("%s: bond not removed on the device: %s", device_id, exc)
        return self.registry.remove(device_id, self.clock())

    def devices(self) -> list[PairedDevice]:
        """Paired devices."""
        return self.registry.all()

    def latest_readings(self, device_id: str, limit: int = 5) -> list[Reading]:
        """The device's most recent readings (stored on the hub)."""
        return self.outbox.latest(device_id, limit)

    # ------------------------------------------------------------------------- syncing

    async def sync(self, paired: PairedDevice, seen: Seen) -> SyncResult:
        """Run one session with a paired device and record how it ended."""
        result = await self._session(seen, paired, passkey=None, pairing=False)
        try:
            self.registry.record_sync(paired.device_id, self.clock(), result.outcome, seen.address)
        except sqlite3.Error as exc:
            if not is_disk_full(exc):
                raise
            # Bookkeeping, not a reading: a full disk must not stop the hub (the records wait
            # on the device, the heartbeat tells the care team).
            log.warning("%s: sync not noted, the disk is full", paired.device_id)
        return result

    async def sync_round(
        self, scan_s: float, *, meter_interval_s: float = 0.0
    ) -> dict[str, SyncResult]:
        """Scan once, then sync every paired device that was heard and is due.

        A meter that synced completely is not due again for `meter_interval_s` (meters
        advertise all the time; their records wait safely in memory). A cuff is due whenever it
        is heard (cuffs advertise when they have readings), and any device whose last session
        failed is due at once.
        """
        heard = await self.connector.scan(scan_s)
        now = self.monotonic()
        by_address = {p.address.upper(): p for p in self.registry.all()}
        due = {
            paired.device_id: (paired, seen)
            for address, seen in heard.items()
            if (paired := by_address.get(address.upper())) is not None
            and self._next_sync.get(paired.device_id, now) <= now
        }
        for device_id, (paired, seen) in list(due.items()):
            if paired.kind in STREAM_KINDS:
                del due[device_id]
                running = self.streams.get(device_id)
                if running is None or running.done():
                    self.streams[device_id] = asyncio.create_task(self.sync(paired, seen))
        results = await asyncio.gather(*(self.sync(p, s) for p, s in due.values()))
        for (paired, _), result in zip(due.values(), results, strict=True):
            ok = result.outcome in (Outcome.COMPLETE, Outcome.NOTHING_NEW)
            wait_s = meter_interval_s if ok and paired.kind in RECORD_KINDS else 0.0
            self._next_sync[paired.device_id] = self.monotonic() + wait_s
        return dict(zip(due, results, strict=True))

    async def stop_streams(self) -> dict[str, SyncResult]:
        """Cancel the running stream sessions and close their minutes; returns how the streams
        that had already ended ended."""
        for task in self.streams.values():
            task.cancel()
        ended: dict[str, SyncResult] = {}
        for device_id, task in self.streams.items():
            try:
                ended[device_id] = await task
            except asyncio.CancelledError:
                continue
        self.streams.clear()
        return ended

    async def summarize_streams(self) -> int:
        """Publish the summaries of every closed minute (streams that went quiet included)."""
        if self.samples is None:
            return 0
        made = await asyncio.to_thread(
            self.samples.summarize, self.clock(), self.outbox, self.gateway_id
        )
        if made:
            self.wake.set()
        return made

    async def device_loop(
        self, scan_s: float, meter_interval_s: float, idle_s: float = 1.0
    ) -> None:
        """Scan, sync what is due, pause `idle_s`, forever (cancel to stop).

        Scans and connections never overlap (`Connector`); a round waits for its sessions.
        One cancellation stops it, even one that a library below lost (`gateway.cancelling`).
        """
        try:
            while True:
                try:
                    await self.sync_round(scan_s, meter_interval_s=meter_interval_s)
                    await self.summarize_streams()
                except (BleakError, OSError) as exc:
                    log.error("%s: scan round failed: %s", self.gateway_id, exc)
                except OutboxFullError as exc:
                    log.error("%s: summaries wait: %s", self.gateway_id, exc)
                checkpoint()
                await asyncio.sleep(idle_s)
        finally:
            await self.stop_streams()

    # ------------------------------------------------------------------------- one session

    def _make_session(
        self, paired: PairedDevice, inventory: GattInventory, pairing: bool
    ) -> BaseSession:
        now = self.clock()
        params = SessionParams(
            patient_id=paired.patient_id,
            gateway_id=self.gateway_id,
            expected_device_id=None if pairing else paired.device_id,
            cursor=None if pairing else self.outbox.cursor(paired.device_id),
            local_utc_offset_min=self.utc_offset_min(now),
            clock_set_threshold_s=self.tuning.clock_set_threshold_s,
            require_bond=True,
            pace_s=self.tuning.pace_s,
            operation_timeout_s=self.tuning.operation_timeout_s,
            silence_timeout_s=self.tuning.silence_timeout_s,
            profile=profile_for(paired.name),
            patients_by_user=paired.user_patients,
            stream_s=self.tuning.pair_stream_s if pairing else None,
        )
        return SESSIONS[paired.kind](params, inventory)

    async def _session(
        self,
        seen: Seen,
        paired: PairedDevice,
        *,
        passkey: int | None,
        pairing: bool,
        on_step: StepSink | None = None,
    ) -> SyncResult:
        link = SessionLink(
            self.clock,
            passkey=passkey,
            op_timeout_s=self.tuning.operation_timeout_s,
            on_step=on_step,
        )
        stored = 0
        sessions: list[BaseSession] = []

        async def on_event(event: Event) -> None:
            nonlocal stored
            if isinstance(event, RecordsReady):
                identity = sessions[0].device
                if identity is None:  # nothing is quarantined before identification
                    log.error("%s: records before identification ignored", seen.address)
                    return
                device_id = identity.id
                if on_step is not None and event.readings:
                    on_step(Step.SAVING, link.received)
                self.failpoints.hit(BEFORE_COMMIT)
                result = await asyncio.to_thread(
                    self.outbox.store,
                    device_id,
                    event.readings,
                    event.cursor,
                    event.quarantined,
                    self.clock(),
                )
                stored += result.stored
                self.wake.set()
            elif isinstance(event, SamplesReady) and self.samples is not None:
                identity = sessions[0].device
                if identity is None:
                    return
                stream = Stream(identity, paired.patient_id, self.gateway_id, event.kind)
                await asyncio.to_thread(self.samples.store, stream, event.samples)

        if on_step is not None:
            on_step(Step.CONNECTING, 0)
        try:
            stream = paired.kind in STREAM_KINDS
            async with self.connector.connect(
                seen.device, link.on_disconnect, stream=stream
            ) as client:
                sessions.append(self._make_session(paired, inventory_of(client), pairing))
                ended = await link.run(client, sessions[0], on_event)
        except ConnectFailedError as exc:
            return SyncResult(UNREACHABLE, str(exc), 0, paired)
        except OutboxFullError as exc:
            log.error("%s: %s", paired.device_id, exc)
            identity = sessions[0].device if sessions else None
            known = paired if identity is None else _identified(paired, identity)
            return SyncResult(OUTBOX_FULL, str(exc), stored, known)
        return SyncResult(ended.outcome.value, ended.detail, stored, _with_identity(paired, ended))


_UNIDENTIFIED = "unidentified-"


def _placeholder(address: str) -> DeviceInfo:
    return DeviceInfo(id=f"{_UNIDENTIFIED}{address.replace(':', '')}")


def _with_identity(paired: PairedDevice, ended: SessionEnded) -> PairedDevice:
    if ended.device is None:
        return paired
    return _identified(paired, ended.device, ended.outcome.value)


def _identified(
    paired: PairedDevice, device: DeviceInfo, outcome: str | None = None
) -> PairedDevice:
    return PairedDevice(
        device=device,
        address=paired.address,
        kind=paired.kind,
        patient_id=paired.patient_id,
        paired_at=paired.paired_at,
        name=paired.name,
        last_sync_at=paired.last_sync_at,
        last_outcome=outcome,
        user_patients=paired.user_patients,
    )
