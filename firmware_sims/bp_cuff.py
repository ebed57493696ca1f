"""A simulated blood-pressure cuff: Blood Pressure Service + CTS + DIS + Battery on the air.

BLS 1.0: Blood Pressure Measurement 0x2A35 (indicate), Intermediate Cuff Pressure 0x2A36
(notify), Blood Pressure Feature 0x2A49 (read). During a cuff cycle the cuff notifies the
current cuff pressure (ICP) as it inflates, then indicates the measurement. Stored readings
are indicated when a bonded host enables indications on 0x2A35: all of them (Beurer-like,
docs/device-profiles.md quirk 16 "reads multiple") or only those not yet confirmed (Omron-like
"deletes after transfer"). A reading counts as delivered only once its indication is confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from devices.codecs import (
    BloodPressureFeature,
    BloodPressureFeatureBits,
    BloodPressureMeasurement,
    IntermediateCuffPressure,
    MeasurementStatus,
    SFloat,
)
from devices.codecs.blood_pressure_measurement import FLAG_USER_ID
from devices.units import mmhg_to_kpa
from firmware_sims.air import Air
from firmware_sims.clocked import ClockedPeripheral, Now, utc_now
from firmware_sims.device_clock import DeviceClock
from firmware_sims.errors import FirmwareSimsError
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import READABLE, model_settings, read_only

logger = logging.getLogger(__name__)

BEURER_RFU_FLAG = 0x40  # flags bit 6, set by Beurer BM cuffs (docs/device-profiles.md quirk 23)
ICP_STEP_MMHG = 20
CONFIRMATION_GRACE_S = 1.0  # after a disconnection, for a confirmation already sent
FEATURES = (
    BloodPressureFeatureBits.BODY_MOVEMENT_DETECTION
    | BloodPressureFeatureBits.IRREGULAR_PULSE_DETECTION
    | BloodPressureFeatureBits.MULTIPLE_BOND
)


@dataclass
class StoredReading:
    """A reading in the cuff's memory; `delivered` once a host confirmed its indication."""

    measurement: BloodPressureMeasurement
    delivered: bool = False


class BloodPressureCuff(ClockedPeripheral):
    """A BLS cuff with a reading memory (see the module docstring)."""

    advertised_services = (0x1810,)

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
        clock_drift_ppm: float = 0.0,
        advertising_interval_ms: float = 100.0,
    ) -> None:
        self.model = model
        self.faults = faults or Faults()
        self.now = now
        self.clock = DeviceClock.set_to_local(
            now(), utc_offset_min=utc_offset_min, drift_ppm=clock_drift_ppm
        )
        self.memory: list[StoredReading] = []
        self.indications_sent = 0
        self._transfer: asyncio.Task[None] | None = None
        self.transfers_done = 0
        self.transfer_done = asyncio.Event()
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=4),
            advertising_interval_ms=advertising_interval_ms,
        )
        self.refuse_pairing = self.faults.refuse_pairing

    def build_services(self) -> list[Service]:
        """DIS, Battery, Blood Pressure, Current Time."""
        services = super().build_services()
        props = Characteristic.Properties
        self.measurement_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A35", props.INDICATE, READABLE, b"")
        )
        self.measurement_char.on("subscription", self._on_subscription)
        self.icp_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A36", props.NOTIFY, READABLE, b"")
        )
        feature = bytes(BloodPressureFeature(int(FEATURES)))
        bls = Service(
            "1810", [self.measurement_char, self.icp_char, read_only("2A49", lambda _c: feature)]
        )
        return [*services, bls, self.current_time_service()]

    # measuring ----------------------------------------------------------------------------

    def encode(
        self,
        *,
        systolic_mmhg: float,
        diastolic_mmhg: float,
        pulse_per_min: float,
        user_id: int,
        body_movement: bool,
        irregular_pulse: bool,
        time_stamp: datetime,
    ) -> BloodPressureMeasurement:
        """The measurement exactly as this model puts it on the air.

        Raises:
            FirmwareSimsError: `user_id` is not one of the model's users.
            EncodeError: a value cannot be encoded.
        """
        if not 1 <= user_id <= self.model.users:
            raise FirmwareSimsError(f"user_id must be 1..{self.model.users}, got {user_id}")
        status = (body_movement << MeasurementStatus.BODY_MOVEMENT) | (
            irregular_pulse << MeasurementStatus.IRREGULAR_PULSE
        )
        mean = diastolic_mmhg + (systolic_mmhg - diastolic_mmhg) / 3
        strict = BloodPressureMeasurement.build(
            systolic=self._pressure(systolic_mmhg),
            diastolic=self._pressure(diastolic_mmhg),
            mean_arterial=self._pressure(mean),
            unit=self.model.pressure_unit,
            time_stamp=time_stamp,
            pulse_rate=SFloat.from_value(round(pulse_per_min)),
            user_id=user_id if self.model.users > 1 or self.model.beurer_quirks else None,
            measurement_status=status,
        )
        if not self.model.beurer_quirks:
            return strict
        # Beurer BM: RFU bit 6 set, User ID sent without its flag, pulse/status big-endian.
        return BloodPressureMeasurement(
            (strict.flags | BEURER_RFU_FLAG) & ~FLAG_USER_ID,
            strict.systolic,
            strict.diastolic,
            strict.mean_arterial,
            strict.time_stamp,
            strict.pulse_rate,
            strict.user_id,
            strict.measurement_status,
            profile="beurer-bm",
        )

    def _pressure(self, pressure_mmhg: float) -> SFloat:
        """A pressure in the model's unit: whole mmHg, or kPa to 0.1 (what a kPa display shows)."""
        if self.model.pressure_unit == "kPa":
            return SFloat.from_value(round(mmhg_to_kpa(pressure_mmhg), 1), exponent=-1)
        return SFloat.from_value(round(pressure_mmhg))

    async def measure(
        self,
        systolic_mmhg: float,
        diastolic_mmhg: float,
        pulse_per_min: float,
        *,
        user_id: int = 1,
        body_movement: bool = False,
        irregular_pulse: bool = False,
    ) -> StoredReading:
        """Run a cuff cycle: ICP notifications while inflating (to any subscribed host), then
        store the reading and indicate it to a subscribed host. A host that goes away before it
        confirms leaves the reading unsent (it goes with the next transfer), as on a real cuff.

        Raises:
            FirmwareSimsError: `user_id` is not one of the model's users.
            EncodeError: a value cannot be encoded.
        """
        top = int(systolic_mmhg) + 30
        for pressure in range(0, top + 1, ICP_STEP_MMHG):
            icp = IntermediateCuffPressure.build(
                cuff_pressure=self._pressure(pressure), unit=self.model.pressure_unit
            )
            for connection in list(self.connections):
                if connection in self.connections:  # not gone while we were busy
                    await self.device.notify_subscriber(connection, self.icp_char, bytes(icp))
        reading = StoredReading(
            self.encode(
                systolic_mmhg=systolic_mmhg,
                diastolic_mmhg=diastolic_mmhg,
                pulse_per_min=pulse_per_min,
                user_id=user_id,
                body_movement=body_movement,
                irregular_pulse=irregular_pulse,
                time_stamp=self.device_time(),
            )
        )
        self.memory.append(reading)
        for connection in list(self.connections):
            if connection in self.connections and self._indications_on(connection):
                try:
                    await self._indicate(connection, reading)
                except Exception as exc:  # the link went away unconfirmed: the reading waits
                    logger.debug("%s: live indication not confirmed: %r", self.address, exc)
        return reading

    def store(self, measurement: BloodPressureMeasurement) -> StoredReading:
        """Put a reading straight into memory (taken while no host was around)."""
        reading = StoredReading(measurement)
        self.memory.append(reading)
        return reading

    # transfer -----------------------------------------------------------------------------

    def _indications_on(self, connection: Connection) -> bool:
        return bool(self.device.gatt_server.read_cccd(connection, self.measurement_char)[0] & 2)

    def _on_subscription(self, bearer: object, _notify: bool, indicate: bool) -> None:
        if not indicate or not isinstance(bearer, Connection):
            return
        if self._transfer is None or self._transfer.done():
            self.transfer_done.clear()
            self._transfer = asyncio.get_running_loop().create_task(self._send_memory(bearer))

    async def _send_memory(self, connection: Connection) -> None:
        faults = self.faults
        pending = [r for r in self.memory if self.model.send_all_on_connect or not r.delivered]
        sent = 0
        try:
            for reading in pending:
                await self._indicate(connection, reading)
                sent += 1
                if faults.disconnect_after_records == sent:
                    await self._disconnect(connection)
                    return
                if faults.power_off_after_records == sent:
                    await self.power_off()
                    return
            if self.model.disconnect_after_transfer:
                await self._disconnect(connection)
        except Exception as exc:  # the link went away mid-transfer
            logger.debug("%s: transfer ended: %r", self.address, exc)
        finally:
            self.transfers_done += 1
            self.transfer_done.set()

    async def _indicate(self, connection: Connection, reading: StoredReading) -> None:
        if self.faults.slow_response_s:
            await asyncio.sleep(self.faults.slow_response_s)
        if connection not in self.connections or not self._indications_on(connection):
            # Bumble returns quietly when nobody is subscribed: that is not a delivery.
            raise ConnectionError("the host is gone or no longer subscribed")
        self.indications_sent += 1
        payload = bytes(reading.measurement)
        if self.faults.corrupt(self.indications_sent):
            payload = payload[:-1]
        # Done once the host confirmed (ATT Handle Value Confirmation), or failed when the link
        # goes first (Bumble would otherwise wait out its 30 s GATT timeout on a dead link).
        indication = asyncio.ensure_future(
            self.device.indicate_subscriber(connection, self.measurement_char, payload)
        )
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_gone(*_: object) -> None:
            if not gone.done():
                gone.set_result(None)

        connection.on("disconnection", on_gone)
        try:
            await asyncio.wait({indication, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            with contextlib.suppress(KeyError):  # pyee: already gone with its emitter
                connection.remove_listener("disconnection", on_gone)
        if not indication.done():  # a confirmation already on its way still counts
            await asyncio.wait({indication}, timeout=CONFIRMATION_GRACE_S)
        if not indication.done():
            indication.cancel()
            raise ConnectionError("the link went away before the host confirmed")
        indication.result()
        reading.delivered = True

    async def power_on(self) -> None:
        """Power on (the forget-bond fault drops the keys first, as a battery change does)."""
        if self.faults.forget_bond and not self.powered:
            await self.forget_bonds()
        await super().power_on()
