"""A simulated glucose meter: Glucose Service + Current Time + DIS + Battery on the virtual air.

GLS v1.0.1: Glucose Measurement 0x2A18 and Context 0x2A34 (notify), Glucose Feature 0x2A51
(read), Record Access Control Point 0x2A52 (write + indicate). The RACP logic is the pure
`RacpServer`; this module moves its decisions onto the air. GLS 1.0.1 error handling (section
1.6, Attribute Protocol Application Error codes, and 3.4.2): a RACP write while the RACP CCCD is
not set for indications, or a "report stored records" while Glucose Measurement notifications
are off, gets ATT error 0x81 (Client Characteristic Configuration Descriptor Improperly
Configured); a second procedure while one runs gets 0x80 (Procedure Already in Progress); only
Abort may interrupt. (0xFD and 0xFE are the Core Specification Supplement's common profile
codes, which GLS does not use.) CTS 1.1: Current Time 0x2A2B (read, notify, write sets the
clock). GAP Appearance: Generic Glucose Meter.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Literal

from bumble.att import AttributeValue
from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from devices.codecs import (
    GlucoseFeature,
    GlucoseFeatureBits,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSampleLocation,
    GlucoseType,
    Meal,
    SFloat,
)
from devices.codecs.racp import FilterType, Operator
from devices.units import MG_DL_PER_MMOL_L
from firmware_sims.air import Air
from firmware_sims.clocked import ClockedPeripheral, Now, utc_now
from firmware_sims.device_clock import DeviceClock
from firmware_sims.faults import Faults, next_sequence
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import (
    NOTIFY,
    READABLE,
    model_settings,
    read_only,
)
from firmware_sims.racp_server import ALL_FILTERS, GlucoseRecord, RacpAction, RacpServer

logger = logging.getLogger(__name__)

FEATURES = (
    GlucoseFeatureBits.LOW_BATTERY_DETECTION
    | GlucoseFeatureBits.SENSOR_STRIP_INSERTION_ERROR_DETECTION
    | GlucoseFeatureBits.SENSOR_RESULT_HIGH_LOW_DETECTION
    | GlucoseFeatureBits.TIME_FAULT
)


def features_of(model: DeviceModel) -> int:
    """The model's Glucose Feature bits: a meter that bonds with several hosts says so."""
    multiple = 0 if model.bonded_host_only else GlucoseFeatureBits.MULTIPLE_BOND
    return int(FEATURES | multiple)


class GlucoseMeter(ClockedPeripheral):
    """A GLS meter with stored records (see the module docstring)."""

    advertised_services = (0x1808,)

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
        self.utc_offset_min = utc_offset_min
        # Contour-like meters keep UTC and send the local offset; others keep local time.
        self.clock = DeviceClock.set_to_local(
            now(),
            utc_offset_min=0 if model.base_time_utc else utc_offset_min,
            drift_ppm=clock_drift_ppm,
        )
        filters = (
            ALL_FILTERS
            if model.user_facing_time_filter
            else frozenset({FilterType.SEQUENCE_NUMBER})
        )
        operators = frozenset(Operator(o) for o in model.racp_operators)
        self.racp: RacpServer[GlucoseRecord] = RacpServer(filter_types=filters, operators=operators)
        self.readings_taken = 0
        self._last_sequence: int | None = None
        self.procedure: asyncio.Task[None] | None = None
        self._abort = False
        self._abort_requested = asyncio.Event()
        self._stale_procedure_pending = self.faults.racp_busy_first
        self._cccd_losses_left = self.faults.cccd_lost_writes
        self.notifications_sent = 0
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=6),
            advertising_interval_ms=advertising_interval_ms,
        )
        self.refuse_pairing = self.faults.refuse_pairing

    # GATT ---------------------------------------------------------------------------------

    def build_services(self) -> list[Service]:
        """DIS, Battery, Glucose, Current Time."""
        services = super().build_services()
        props = Characteristic.Properties
        self.measurement_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A18", props.NOTIFY, READABLE, b"")
        )
        self.context_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2A34", props.NOTIFY, READABLE, b"")
        )
        feature = bytes(GlucoseFeature(features_of(self.model)))
        self.racp_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic(
                "2A52",
                props.WRITE | props.INDICATE,
                self.protected_write(),
                AttributeValue(write=self._on_racp_write),
            )
        )
        gls = [self.measurement_char]
        if self.model.context:
            gls.append(self.context_char)
        gls += [read_only("2A51", lambda _c: feature), self.racp_char]
        return [*services, Service("1808", gls), self.current_time_service()]

    # readings -----------------------------------------------------------------------------

    def take_reading(
        self,
        glucose_mg_dl: float,
        *,
        meal: Meal | None = None,
        control_solution: bool = False,
        sensor_status: int | None = None,
        at_utc: datetime | None = None,
    ) -> list[GlucoseRecord]:
        """Measure (a strip went in): store a record as the firmware encodes it.

        Returns the records stored (two when the duplicate fault fires).

        Raises:
            EncodeError: the value cannot be encoded (e.g. negative or beyond SFLOAT range).
            FirmwareSimsError: `at_utc` is naive.
        """
        real = at_utc or self.now()
        self.readings_taken += 1
        faults = self.faults
        if (
            faults.clock_jump_after is not None
            and self.readings_taken == faults.clock_jump_after + 1
        ):
            self.clock.jump(real, timedelta(minutes=faults.clock_jump_min))
        sequence = next_sequence(self._last_sequence, self.readings_taken - 1, faults)
        self._last_sequence = sequence
        base_time = self.clock.now(real)
        offset = self.utc_offset_min if self.model.base_time_utc else 0
        if self.model.unit == "mmol/L":
            concentration = SFloat.from_value(
                round(glucose_mg_dl / MG_DL_PER_MMOL_L, 1) / 1e3, exponent=-4
            )
            unit: Literal["kg/L", "mol/L"] = "mol/L"
        else:
            concentration = SFloat.from_value(round(glucose_mg_dl) / 1e5, exponent=-5)
            unit = "kg/L"
        with_context = self.model.context and (meal is not None)
        measurement = GlucoseMeasurement.build(
            sequence_number=sequence,
            base_time=base_time,
            time_offset_min=offset if self.model.time_offset else None,
            concentration=concentration,
            concentration_unit=unit,
            type=GlucoseType.CONTROL_SOLUTION if control_solution else GlucoseType.CAPILLARY_PLASMA,
            sample_location=(
                GlucoseSampleLocation.CONTROL_SOLUTION
                if control_solution
                else GlucoseSampleLocation.FINGER
            ),
            sensor_status=sensor_status,
            context_follows=with_context,
        )
        context = (
            GlucoseMeasurementContext.build(sequence_number=sequence, meal=meal)
            if with_context
            else None
        )
        record = GlucoseRecord(measurement, context)
        stored = [record]
        if faults.duplicate_every and self.readings_taken % faults.duplicate_every == 0:
            stored.append(record)
        for item in stored:
            if (
                faults.out_of_order_every
                and self.readings_taken % faults.out_of_order_every == 0
                and self.racp.records
            ):
                self.racp.records.insert(len(self.racp.records) - 1, item)
            else:
                self.racp.add(item)
        return stored

    # RACP ---------------------------------------------------------------------------------

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        self._inject_racp_faults(connection)
        running = self.procedure is not None and not self.procedure.done()
        if self.check_racp_write(
            connection,
            value,
            racp=self.racp_char,
            records=self.measurement_char,
            records_bit=NOTIFY,
            busy=running,
        ):
            self._abort = True
            self._abort_requested.set()
            return
        action = self.racp.on_write(bytes(value))
        self._abort = False
        self.procedure = asyncio.get_running_loop().create_task(self._run(connection, action))

    def _inject_racp_faults(self, connection: Connection) -> None:
        if self._cccd_losses_left > 0:
            self._cccd_losses_left -= 1
            cccds = self.device.gatt_server.subscribers.get(connection, {})
            cccds.pop(self.measurement_char.handle, None)
        if self._stale_procedure_pending:
            self._stale_procedure_pending = False
            self._abort = False
            self._abort_requested.clear()
            self.procedure = asyncio.get_running_loop().create_task(self._stale(connection))

    async def _stale(self, connection: Connection) -> None:
        """A procedure nobody asked for on this link: it runs until aborted."""
        try:
            await self._abort_requested.wait()
            await self.device.indicate_subscriber(connection, self.racp_char, b"\x06\x00\x03\x01")
        except Exception as exc:  # the link dropped under us
            logger.debug("%s: stale procedure ended: %r", self.address, exc)

    async def _run(self, connection: Connection, action: RacpAction[GlucoseRecord]) -> None:
        faults = self.faults
        sent_records = 0
        try:
            for record in action.records:
                if self._abort:
                    break
                await self._pause()
                payloads = [bytes(record.measurement)]
                if record.context is not None:
                    payloads.append(bytes(record.context))
                for char, payload in zip(
                    (self.measurement_char, self.context_char), payloads, strict=False
                ):
                    self.notifications_sent += 1
                    corrupt = faults.corrupt(self.notifications_sent)
                    wire = payload[:-1] if corrupt else payload
                    await self.device.notify_subscriber(connection, char, wire)
                sent_records += 1
                if faults.disconnect_after_records == sent_records:
                    await self._disconnect(connection)
                    return
                if faults.power_off_after_records == sent_records:
                    await self.power_off()
                    return
            if self._abort:
                response = b"\x06\x00\x03\x01"
            else:
                self.racp.apply_delete(action.delete)
                response = action.response
            await self._pause()
            if not faults.skip_final_response:
                await self.device.indicate_subscriber(connection, self.racp_char, response)
        except Exception as exc:  # the link dropped under us: nothing more to send
            logger.debug("%s: RACP procedure ended: %r", self.address, exc)

    async def _pause(self) -> None:
        if self.faults.slow_response_s:
            await asyncio.sleep(self.faults.slow_response_s)

    async def power_on(self) -> None:
        """Power on (the forget-bond fault drops the keys first, as a battery change does)."""
        if self.faults.forget_bond and not self.powered:
            await self.forget_bonds()
        await super().power_on()
