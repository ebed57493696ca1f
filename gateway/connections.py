"""Connection management: scan, then connect with retries and backoff, a few at a time.

Modelled on bleak-retry-connector's approach (connect attempts with growing back-off, since a
first attempt often fails on a busy adapter) but written for this gateway:

- Scanning and connecting never overlap: the gateway scans for `scan_s`, stops, then connects
  to what it saw. Many adapters (BlueZ on a Raspberry Pi among them) fail connections made
  while a scan runs.
- At most `max_connections` links at once (a semaphore); one controller initiates one
  connection at a time anyway.
- After `stuck_after` consecutive failed connections to different devices the adapter is
  presumed stuck: the next scan waits `cool_down_s` first (BlueZ recovers from most "Operation
  already in progress" states after a pause; a power cycle of the adapter is the last resort
  and is left to the operating system's service manager).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from devices.sessions import gatt
from gateway.cancelling import checkpoint

log = logging.getLogger(__name__)

# Advertised service -> the kind of device the hub treats it as (its `Reading` kind).
SERVICE_KINDS = {
    gatt.GLUCOSE_SERVICE: "glucose",
    gatt.BLOOD_PRESSURE_SERVICE: "blood_pressure",
    gatt.HEART_RATE_SERVICE: "heart_rate",
    gatt.CGM_SERVICE: "cgm_glucose",
    gatt.HEALTH_THERMOMETER_SERVICE: "body_temperature",
    gatt.WEIGHT_SCALE_SERVICE: "body_weight",
    gatt.PULSE_OXIMETER_SERVICE: "spo2",
}
HEALTH_SERVICES = tuple(SERVICE_KINDS)


@dataclass(frozen=True, slots=True)
class Seen:
    """A health device heard during a scan."""

    device: BLEDevice
    name: str | None
    kind: str  # a `SERVICE_KINDS` value
    rssi: int

    @property
    def address(self) -> str:
        """Where it advertised from (may rotate; never an identity)."""
        return self.device.address


def kind_of(service_uuids: list[str]) -> str | None:
    """The device kind from advertised service UUIDs, None if not a health device we serve."""
    uuids = {u.lower() for u in service_uuids}
    return next((kind for uuid, kind in SERVICE_KINDS.items() if uuid in uuids), None)


class ConnectFailedError(BleakError):
    """Every attempt to connect failed (carries the last reason)."""


class Connector:
    """Scans and connects through bleak with the chosen backends (None = platform, BlueZ)."""

    def __init__(
        self,
        scanner_backend: type[BaseBleakScanner] | None,
        client_backend: type[BaseBleakClient] | None,
        *,
        max_connections: int = 3,
        max_streams: int = 4,
        attempts: int = 3,
        connect_timeout_s: float = 20.0,
        backoff_first_s: float = 0.25,
        stuck_after: int = 5,
        cool_down_s: float = 10.0,
    ) -> None:
        self.scanner_backend = scanner_backend
        self.client_backend = client_backend
        self.attempts = attempts
        self.connect_timeout_s = connect_timeout_s
        self.backoff_first_s = backoff_first_s
        self.stuck_after = stuck_after
        self.cool_down_s = cool_down_s
        self.consecutive_failures = 0
        self._slots = asyncio.Semaphore(max_connections)
        self._stream_slots = asyncio.Semaphore(max_streams)
        self._radio = asyncio.Lock()  # scans and connection set-ups take turns

    async def scan(self, duration_s: float) -> dict[str, Seen]:
        """Scan for `duration_s`; return health devices heard, by address."""
        if self.consecutive_failures >= self.stuck_after:
            log.warning(
                "adapter looks stuck (%d failures): cooling down", self.consecutive_failures
            )
            await asyncio.sleep(self.cool_down_s)
            self.consecutive_failures = 0
        seen: dict[str, Seen] = {}

        def heard(device: BLEDevice, adv: AdvertisementData) -> None:
            kind = kind_of(adv.service_uuids)
            if kind is not None:
                seen[device.address] = Seen(device, adv.local_name or device.name, kind, adv.rssi)

        async with self._radio:
            scanner = BleakScanner(heard, backend=self.scanner_backend)
            await scanner.start()
            try:
                await asyncio.sleep(duration_s)
            finally:
                await scanner.stop()
        checkpoint()  # a stop request lost in the controller's commands ends the round here
        return seen

    @asynccontextmanager
    async def connect(
        self,
        device: BLEDevice,
        on_disconnect: Callable[[BleakClient], None],
        *,
        stream: bool = False,
    ) -> AsyncIterator[BleakClient]:
        """Connect (retrying with back-off), yield the client, disconnect on exit. A `stream`
        link (a wearable's, held for hours) takes one of the stream slots, not a sync slot.

        Raises:
            ConnectFailedError: every attempt failed.
        """
        async with self._stream_slots if stream else self._slots:
            client = await self._connect_with_retries(device, on_disconnect)
            try:
                checkpoint()
                yield client
            finally:
                try:
                    await client.disconnect()
                except (BleakError, TimeoutError) as exc:
                    log.debug("%s: disconnect failed: %s", device.address, exc)

    async def _connect_with_retries(
        self, device: BLEDevice, on_disconnect: Callable[[BleakClient], None]
    ) -> BleakClient:
        last = "no attempt"
        for attempt in range(1, self.attempts + 1):
            client = BleakClient(
                device,
                disconnected_callback=on_disconnect,
                timeout=self.connect_timeout_s,
                backend=self.client_backend,
            )
            try:
                async with self._radio:
                    await client.connect()
            except (BleakError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.info("%s: connect attempt %d failed: %s", device.address, attempt, last)
                await asyncio.sleep(self.backoff_first_s * 2 ** (attempt - 1))
                continue
            self.consecutive_failures = 0
            return client
        self.consecutive_failures += 1
        raise ConnectFailedError(f"{device.address}: {self.attempts} attempts failed ({last})")
