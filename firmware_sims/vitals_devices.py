"""A simulated thermometer (HTS 1.0) and weight scale (WSS 1.0) on the air.

Both keep the readings taken while no host was near and indicate them, oldest first, once a
bonded host enables indications on the measurement characteristic; a reading counts as
delivered when its indication is confirmed, and is not sent again. Health Thermometer 0x1809:
Temperature Measurement 0x2A1C (indicate; FLOAT Celsius to 0.1, time stamp, type ear),
Temperature Type 0x2A1D (read). Weight Scale 0x181D: Weight Measurement 0x2A9D (indicate;
0.005 kg, time stamp), Weight Scale Feature 0x2A9E (read: time stamp supported, 0.05 kg
resolution). Current Time Service on both. Faults: `disconnect_after_records`,
`malformed_every`, `slow_response_s`, `refuse_pairing`, `forget_bond`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from devices.codecs import Float, TemperatureMeasurement, TemperatureType
from devices.codecs.weight_measurement import WeightMeasurement
from firmware_sims.air import Air
from firmware_sims.clocked import ClockedPeripheral, Now, utc_now
from firmware_sims.device_clock import DeviceClock
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import READABLE, model_settings, read_only, u16

logger = logging.getLogger(__name__)

FLAG_TIME_STAMP = 0x02
# Weight Scale Feature: bit 0 time stamp supported, bits 3-6 weight resolution 4 = 0.05 kg.
WEIGHT_SCALE_FEATURE = 0x01 | (4 << 3)


@dataclass
class Stored:
    """A reading in memory (its bytes as sent) and whether a host confirmed it."""

    payload: bytes
    delivered: bool = False


class _Indicating(ClockedPeripheral):
    """Memory of readings, indicated to a subscribing host (set `measurement_char`)."""

    measurement_char: Characteristic[bytes]

    def __init__(
        self,
        air: Air,
        model: DeviceModel,
        *,
        serial: str,
        address: str,
        utc_offset_min: int = 0,
        faults: Faults | None = None,
        passkey: int | None = None,
        now: Now = utc_now,
    ) -> None:
        self.model = model
        self.faults = faults or Faults()
        self.now = now
        self.clock = DeviceClock.set_to_local(now(), utc_offset_min=utc_offset_min)
        self.memory: list[Stored] = []
        self.indications_sent = 0
        self.transfer_done = asyncio.Event()
        self._transfer: asyncio.Task[None] | None = None
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=4),
        )
        self.refuse_pairing = self.faults.refuse_pairing

    def _subscribe_hook(self) -> None:
        self.measurement_char.on("subscription", self._on_subscription)

    def _on_subscription(self, bearer: object, _notify: bool, indicate: bool) -> None:
        if not indicate or not isinstance(bearer, Connection):
            return
        if self._transfer is None or self._transfer.done():
            self.transfer_done.clear()
            self._transfer = asyncio.get_running_loop().create_task(self._send_memory(bearer))

    async def _send_memory(self, connection: Connection) -> None:
        sent = 0
        try:
            for stored in [s for s in self.memory if not s.delivered]:
                if self.faults.slow_response_s:
                    await asyncio.sleep(self.faults.slow_response_s)
                self.indications_sent += 1
                payload = stored.payload
                if self.faults.corrupt(self.indications_sent):
                    payload = payload[:-1]
                await self.device.indicate_subscriber(connection, self.measurement_char, payload)
                stored.delivered = True
                sent += 1
                if self.faults.disconnect_after_records == sent:
                    await self._disconnect(connection)
                    return
        except Exception as exc:  # the link went away mid-transfer
            logger.debug("%s: transfer ended: %r", self.address, exc)
        finally:
            self.transfer_done.set()

    async def power_on(self) -> None:
        """Power on (the forget-bond fault drops the keys first)."""
        if self.faults.forget_bond and not self.powered:
            await self.forget_bonds()
        await super().power_on()


class Thermometer(_Indicating):
    """An HTS ear thermometer (see the module docstring)."""

    advertised_services = (0x1809,)

    def build_services(self) -> list[Service]:
        """DIS, Battery, Health Thermometer, Current Time."""
        services = super().build_services()
        self.measurement_char = self.with_protected_cccd(
            Characteristic("2A1C", Characteristic.Properties.INDICATE, READABLE, b"")
        )
        self._subscribe_hook()
        site = read_only("2A1D", lambda _c: bytes([TemperatureType.EAR]))
        return [
            *services,
            Service("1809", [self.measurement_char, site]),
            self.current_time_service(),
        ]

    def take(self, temperature_c: float, *, at: datetime | None = None) -> bytes:
        """Measure: store the reading stamped by the device clock; returns its bytes."""
        stamp = self.clock.now(at or self.now())
        measurement = TemperatureMeasurement.build(
            Float.from_value(round(temperature_c, 1), exponent=-1),
            time_stamp=stamp.replace(microsecond=0),
            temperature_type=TemperatureType.EAR,
        )
        self.memory.append(Stored(bytes(measurement)))
        return bytes(measurement)


class WeightScale(_Indicating):
    """A WSS scale (see the module docstring)."""

    advertised_services = (0x181D,)

    def build_services(self) -> list[Service]:
        """DIS, Battery, Weight Scale, Current Time."""
        services = super().build_services()
        self.measurement_char = self.with_protected_cccd(
            Characteristic("2A9D", Characteristic.Properties.INDICATE, READABLE, b"")
        )
        self._subscribe_hook()
        feature = read_only("2A9E", lambda _c: u16(WEIGHT_SCALE_FEATURE) + b"\x00\x00")
        return [
            *services,
            Service("181D", [self.measurement_char, feature]),
            self.current_time_service(),
        ]

    def weigh(self, weight_kg: float, *, at: datetime | None = None) -> bytes:
        """Step on: store the reading (0.005 kg units) stamped by the device clock."""
        stamp = self.clock.now(at or self.now()).replace(microsecond=0)
        measurement = WeightMeasurement(FLAG_TIME_STAMP, round(weight_kg / 0.005), stamp)
        self.memory.append(Stored(bytes(measurement)))
        return bytes(measurement)
