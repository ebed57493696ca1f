"""A simulated fingertip pulse oximeter: Pulse Oximeter Service + DIS + Battery on the air.

PLXS 1.0: PLX Continuous Measurement 0x2A5F (notify, once a second while a host listens), PLX
Spot-Check Measurement 0x2A5E (indicate: a spot-check taken while connected, and the stored ones
during a RACP transfer), PLX Features 0x2A60 (read: measurement storage for spot-checks, time
stamp supported), Record Access Control Point 0x2A52 with the "all records" operator only
(others: Operator Not Supported), the same GLS-style ATT errors as the meters (0x81, 0x80).

Physiology (`SpO2Params`): SpO2 around a baseline with 0.7 % SD noise and desaturation episodes
that fall to a nadir and recover (in sleep apnoea and COPD exacerbations SpO2 drops below 90 %
for minutes; the 88-92 % target range for COPD is from BTS oxygen guidance, O'Driscoll et al.,
Thorax 2017;72:i1); the pulse comes from `HeartRateModel`. Faults: `disconnect_after_records`
(drop the link after N continuous notifications, once), `malformed_every`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import datetime

from bumble.att import AttributeValue
from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from devices.codecs import PlxContinuousMeasurement, PlxSpotCheckMeasurement, SFloat
from devices.codecs.racp import Operator
from firmware_sims.air import Air
from firmware_sims.clocked import ClockedPeripheral, Now, utc_now
from firmware_sims.device_clock import DeviceClock
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import INDICATE, READABLE, model_settings, read_only, u16
from firmware_sims.physiology_hr import HeartRateModel, HeartRateParams
from firmware_sims.racp_server import RacpAction, RacpServer
from firmware_sims.wearable_plans import SpO2Params, spo2_pct

logger = logging.getLogger(__name__)

FLAG_TIME_STAMP = 0x01
# PLX Features: bit 1 measurement storage for spot-check, bit 3 timestamp for spot-check.
SUPPORTED_FEATURES = 0x0002 | 0x0008


@dataclass(frozen=True, slots=True)
class SpotCheckRecord:
    """A stored spot-check (the RACP selects all of them, in storage order)."""

    index: int
    measurement: PlxSpotCheckMeasurement

    @property
    def sequence_number(self) -> int:
        """Storage order (PLXS has no sequence number on the air)."""
        return self.index

    @property
    def user_facing_time(self) -> datetime | None:
        """No time filter in PLXS."""
        return None


class PulseOximeter(ClockedPeripheral):
    """A PLXS oximeter (see the module docstring)."""

    advertised_services = (0x1822,)

    def __init__(
        self,
        air: Air,
        model: DeviceModel,
        *,
        serial: str,
        address: str,
        spo2: SpO2Params | None = None,
        pulse: HeartRateParams | None = None,
        seed: int = 0,
        utc_offset_min: int = 0,
        faults: Faults | None = None,
        passkey: int | None = None,
        period_s: float = 1.0,
        now: Now = utc_now,
    ) -> None:
        self.model = model
        self.faults = faults or Faults()
        self.now = now
        self.clock = DeviceClock.set_to_local(now(), utc_offset_min=utc_offset_min)
        self.spo2 = spo2 or SpO2Params()
        self.heart = HeartRateModel(pulse or HeartRateParams(), seed)
        self._rng = random.Random(seed + 7)  # noqa: S311 - physiology, not security
        self.period_s = period_s
        self.racp: RacpServer[SpotCheckRecord] = RacpServer(
            operators=frozenset({Operator.ALL_RECORDS}), supports_delete=False
        )
        self.notifications_sent = 0
        self.delivered: set[int] = set()  # spot-check indexes a host confirmed (indication)
        self._streamer: asyncio.Task[None] | None = None
        self._procedure: asyncio.Task[None] | None = None
        self._t0 = 0.0
        self._dropped = False
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=4),
        )
        self.refuse_pairing = self.faults.refuse_pairing

    def build_services(self) -> list[Service]:
        """DIS, Battery, Pulse Oximeter, Current Time."""
        services = super().build_services()
        props = Characteristic.Properties
        self.continuous_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A5F", props.NOTIFY, READABLE, b"")
        )
        self.spot_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A5E", props.INDICATE, READABLE, b"")
        )
        self.racp_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic(
                "2A52",
                props.WRITE | props.INDICATE,
                self.protected_write(),
                AttributeValue(write=self._on_racp_write),
            )
        )
        features = read_only("2A60", lambda _c: u16(SUPPORTED_FEATURES))
        plx = [self.spot_char, self.continuous_char, features, self.racp_char]
        return [*services, Service("1822", plx), self.current_time_service()]

    # physiology ---------------------------------------------------------------------------

    def spo2_pct(self, t_s: float) -> float:
        """SpO2 at `t_s` seconds after power-on (a desaturation is a triangle to its nadir)."""
        return spo2_pct(self.spo2, t_s, self._rng)

    def spot_check(
        self, spo2_pct: float, pulse_per_min: float, *, at: datetime | None = None
    ) -> bytes:
        """Take a spot-check now (or store one taken `at`): kept in memory, indicated to a
        listening host; returns its bytes."""
        stamp = self.clock.now(at or self.now()).replace(microsecond=0)
        measurement = PlxSpotCheckMeasurement(
            FLAG_TIME_STAMP,
            SFloat.from_value(round(spo2_pct)),
            SFloat.from_value(round(pulse_per_min)),
            stamp,
        )
        record = SpotCheckRecord(len(self.racp.records), measurement)
        self.racp.add(record)
        for connection in list(self.connections):
            if self.device.gatt_server.read_cccd(connection, self.spot_char)[0] & INDICATE:
                asyncio.get_running_loop().create_task(self._indicate(connection, record))
        return bytes(measurement)

    async def _indicate(self, connection: Connection, record: SpotCheckRecord) -> None:
        try:
            await self.device.indicate_subscriber(
                connection, self.spot_char, bytes(record.measurement)
            )
            self.delivered.add(record.index)
        except Exception as exc:  # the link went away
            logger.debug("%s: spot-check not indicated: %r", self.address, exc)

    # streaming ----------------------------------------------------------------------------

    def elapsed_s(self) -> float:
        """Seconds since power-on (the physiology's clock)."""
        return asyncio.get_running_loop().time() - self._t0

    async def power_on(self) -> None:
        """Power on, advertise, stream to whoever subscribes."""
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
            t_s = self.elapsed_s()
            payload = bytes(
                PlxContinuousMeasurement(
                    0,
                    SFloat.from_value(round(self.spo2_pct(t_s))),
                    SFloat.from_value(round(self.heart.bpm(t_s))),
                )
            )
            for connection in list(self.connections):
                if not self.device.gatt_server.read_cccd(connection, self.continuous_char)[0]:
                    continue
                self.notifications_sent += 1
                wire = payload[:2] if self.faults.corrupt(self.notifications_sent) else payload
                try:
                    await self.device.notify_subscriber(connection, self.continuous_char, wire)
                except Exception as exc:  # the link went away
                    logger.debug("%s: notification not sent: %r", self.address, exc)
                if (
                    self.faults.disconnect_after_records == self.notifications_sent
                    and not self._dropped
                ):
                    self._dropped = True
                    await self._disconnect(connection)

    # RACP ---------------------------------------------------------------------------------

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        running = self._procedure is not None and not self._procedure.done()
        if self.check_racp_write(
            connection,
            value,
            racp=self.racp_char,
            records=self.spot_char,
            records_bit=INDICATE,
            busy=running,
        ):
            return  # nothing to abort between two indications: the transfer is short
        action = self.racp.on_write(bytes(value))
        self._procedure = asyncio.get_running_loop().create_task(self._run(connection, action))

    async def _run(self, connection: Connection, action: RacpAction[SpotCheckRecord]) -> None:
        try:
            for record in action.records:
                await self.device.indicate_subscriber(
                    connection, self.spot_char, bytes(record.measurement)
                )
                self.delivered.add(record.index)
            await self.device.indicate_subscriber(connection, self.racp_char, action.response)
        except Exception as exc:  # the link dropped under us
            logger.debug("%s: RACP procedure ended: %r", self.address, exc)
