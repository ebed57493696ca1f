"""A simulated heart-rate strap: Heart Rate Service + DIS + Battery on the air, streaming.

HRS 1.0: Heart Rate Measurement 0x2A37 (notify, once a second while a host is subscribed: heart
rate as uint8, sensor contact detected, RR intervals), Body Sensor Location 0x2A38 (read: 1 =
chest). The heart rate comes from `HeartRateModel` over the seconds since power-on. GAP
Appearance: Heart Rate Belt. Faults: `disconnect_after_records` (the strap drops the link after
N notifications, once: a dropout), `power_off_after_records`, `malformed_every` (truncated
notifications). A strap keeps no history: what is sent while nobody listens is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bumble.gatt import Characteristic, Service

from devices.codecs import HeartRateMeasurement
from firmware_sims.air import Air
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import (
    READABLE,
    SimulatedPeripheral,
    model_settings,
    read_only,
)
from firmware_sims.physiology_hr import HeartRateModel, HeartRateParams

logger = logging.getLogger(__name__)

CHEST = 1  # Body Sensor Location (HRS 1.0 3.2)


class HeartRateStrap(SimulatedPeripheral):
    """An HRS strap (see the module docstring)."""

    advertised_services = (0x180D,)

    def __init__(
        self,
        air: Air,
        model: DeviceModel,
        *,
        serial: str,
        address: str,
        physiology: HeartRateParams | None = None,
        seed: int = 0,
        faults: Faults | None = None,
        passkey: int | None = None,
        period_s: float = 1.0,
        advertising_interval_ms: float = 100.0,
    ) -> None:
        self.model = model
        self.faults = faults or Faults()
        self.heart = HeartRateModel(physiology or HeartRateParams(), seed)
        self.period_s = period_s
        self.notifications_sent = 0
        self.sensor_contact = True
        self._streamer: asyncio.Task[None] | None = None
        self._t0 = 0.0
        self._dropped = False
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=5),
            advertising_interval_ms=advertising_interval_ms,
        )
        self.refuse_pairing = self.faults.refuse_pairing

    def build_services(self) -> list[Service]:
        """DIS, Battery, Heart Rate."""
        services = super().build_services()
        props = Characteristic.Properties
        self.measurement_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A37", props.NOTIFY, READABLE, b"")
        )
        location = read_only("2A38", lambda _c: bytes([CHEST]))
        return [*services, Service("180D", [self.measurement_char, location])]

    def elapsed_s(self) -> float:
        """Seconds since power-on (the physiology's clock)."""
        return asyncio.get_running_loop().time() - self._t0

    async def power_on(self) -> None:
        """Power on, advertise, and stream to whoever subscribes."""
        if self._streamer is None or self._streamer.done():
            self._t0 = asyncio.get_running_loop().time()
            self._streamer = asyncio.get_running_loop().create_task(self._stream())
        await super().power_on()

    async def power_off(self) -> None:
        """Cut the power (the stream stops)."""
        if self._streamer is not None and self._streamer is not asyncio.current_task():
            self._streamer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._streamer
        await super().power_off()

    async def _stream(self) -> None:
        while True:
            await asyncio.sleep(self.period_s)
            if not self.powered:
                continue
            rate, intervals = self.heart.beat(self.elapsed_s())
            payload = bytes(
                HeartRateMeasurement.build(
                    rate, sensor_contact=self.sensor_contact, rr_intervals_1024ths=intervals
                )
            )
            for connection in list(self.connections):
                if not self.device.gatt_server.read_cccd(connection, self.measurement_char)[0]:
                    continue
                self.notifications_sent += 1
                wire = payload[:1] if self.faults.corrupt(self.notifications_sent) else payload
                try:
                    await self.device.notify_subscriber(connection, self.measurement_char, wire)
                except Exception as exc:  # the link went away between the check and the send
                    logger.debug("%s: notification not sent: %r", self.address, exc)
                await self._maybe_drop(connection)

    async def _maybe_drop(self, connection: object) -> None:
        faults = self.faults
        if faults.power_off_after_records == self.notifications_sent:
            await self.power_off()
        elif faults.disconnect_after_records == self.notifications_sent and not self._dropped:
            self._dropped = True
            await self._disconnect(connection)  # type: ignore[arg-type]
