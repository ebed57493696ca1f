"""A simulated continuous glucose monitor: CGM Service + DIS + Battery on the air.

CGMS 1.0.1: CGM Measurement 0x2AA7 (notify; the RACP transfer packs as many size-prefixed
records into one notification as the ATT MTU allows), CGM Feature 0x2AA8 (read: E2E-CRC
supported, type ISF, location subcutaneous tissue), CGM Session Start Time 0x2AAA (read: local
start, time zone, DST, E2E-CRC), Record Access Control Point 0x2A52 (write + indicate; filter
type 1 is the Time Offset). The same GLS-style error handling as the meters: 0x81 when the RACP
CCCD is not set for indications or a report is asked with measurement notifications off, 0x80
for a second procedure, only Abort interrupts.

Physiology (`wearable_plans.CgmTrace`, which scenario plans use too): the interstitial glucose
is the meters' `GlucoseModel` trace (local time of day) seen through a sensor error of 7 % SD
(current sensors report a MARD of about 9 %, e.g. Shah et al., Diabetes Technol Ther
2018;20:428), a reading every `interval_min` after a warm-up
(`warmup_min`, none during it), until the sensor expires after `lifetime_days` (then the
session is stopped and nothing more is recorded). Faults: `disconnect_after_records`,
`power_off_after_records`, `malformed_every` (a record with a wrong E2E-CRC),
`skip_final_response`, `slow_response_s`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bumble.att import AttributeValue
from bumble.device import Connection
from bumble.gatt import Characteristic, Service

from devices.codecs import CgmFeature, CgmMeasurement, CgmSessionStartTime, SFloat
from devices.codecs.cgm_feature import E2E_CRC_SUPPORTED
from devices.codecs.cgm_measurement import FLAG_STATUS
from devices.codecs.racp import FilterType
from firmware_sims.air import Air
from firmware_sims.faults import Faults
from firmware_sims.models import DeviceModel
from firmware_sims.peripheral import (
    NOTIFY,
    READABLE,
    SimulatedPeripheral,
    model_settings,
    read_only,
)
from firmware_sims.physiology_glucose import GlucoseParams
from firmware_sims.racp_server import RacpAction, RacpServer
from firmware_sims.wearable_plans import CgmTrace

logger = logging.getLogger(__name__)

TYPE_ISF_SUBCUTANEOUS = 0x59  # Type 9 interstitial fluid, Sample Location 5 subcutaneous tissue
SESSION_STOPPED = 0x01  # status octet bit 0


@dataclass(frozen=True, slots=True)
class CgmRecord:
    """A stored CGM record; RACP filter type 1 compares its Time Offset."""

    measurement: CgmMeasurement

    @property
    def sequence_number(self) -> int:
        """The Time Offset (minutes since the session start)."""
        return self.measurement.time_offset_min

    @property
    def user_facing_time(self) -> datetime | None:
        """CGMS has no user-facing-time filter."""
        return None


class ContinuousGlucoseMonitor(SimulatedPeripheral):
    """A CGMS sensor with a record memory (see the module docstring)."""

    advertised_services = (0x181F,)

    def __init__(
        self,
        air: Air,
        model: DeviceModel,
        *,
        serial: str,
        address: str,
        session_start_utc: datetime,
        utc_offset_min: int = 0,
        glucose: GlucoseParams | None = None,
        seed: int = 0,
        faults: Faults | None = None,
        passkey: int | None = None,
        interval_min: int = 5,
        warmup_min: int = 60,
        lifetime_days: float = 14.0,
        e2e_crc: bool = True,
        advertising_interval_ms: float = 100.0,
    ) -> None:
        self.model = model
        self.faults = faults or Faults()
        self.session_start_utc = session_start_utc.astimezone(UTC).replace(second=0, microsecond=0)
        self.utc_offset_min = utc_offset_min
        self.trace = CgmTrace(
            glucose or GlucoseParams(), seed, self.session_start_utc, utc_offset_min
        )
        self.interval_min = interval_min
        self.warmup_min = warmup_min
        self.lifetime_min = int(lifetime_days * 1440)
        self.e2e_crc = e2e_crc
        self.racp: RacpServer[CgmRecord] = RacpServer(
            filter_types=frozenset({FilterType.SEQUENCE_NUMBER}), supports_delete=False
        )
        self._next_offset = warmup_min
        self.procedure: asyncio.Task[None] | None = None
        self._abort = asyncio.Event()
        self.records_sent = 0
        super().__init__(
            air,
            address=address,
            **model_settings(model, serial, passkey, name_digits=6),
            advertising_interval_ms=advertising_interval_ms,
        )
        self.refuse_pairing = self.faults.refuse_pairing

    # GATT ---------------------------------------------------------------------------------

    def build_services(self) -> list[Service]:
        """DIS, Battery, CGM."""
        services = super().build_services()
        props = Characteristic.Properties
        self.measurement_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic("2AA7", props.NOTIFY, READABLE, b"")
        )
        self.racp_char: Characteristic[bytes] = self.with_protected_cccd(
            Characteristic(
                "2A52",
                props.WRITE | props.INDICATE,
                self.protected_write(),
                AttributeValue(write=self._on_racp_write),
            )
        )
        features = E2E_CRC_SUPPORTED if self.e2e_crc else 0
        feature = bytes(CgmFeature.build(features, TYPE_ISF_SUBCUTANEOUS))
        cgm = [
            self.measurement_char,
            read_only("2AA8", lambda _c: feature),
            read_only("2AAA", lambda _c: bytes(self.session_start_time())),
            self.racp_char,
        ]
        return [*services, Service("181F", cgm)]

    def session_start_time(self) -> CgmSessionStartTime:
        """The session start as the sensor reports it (local time, zone in 15 min steps)."""
        local = (self.session_start_utc + timedelta(minutes=self.utc_offset_min)).replace(
            tzinfo=None
        )
        return CgmSessionStartTime(local, self.utc_offset_min // 15, 0, self.e2e_crc)

    # recording ----------------------------------------------------------------------------

    def advance_to(self, now_utc: datetime) -> list[CgmMeasurement]:
        """Record every measurement due up to `now_utc` (warm-up first, none after expiry)."""
        made = []
        elapsed_min = int((now_utc - self.session_start_utc).total_seconds() // 60)
        while self._next_offset <= min(elapsed_min, self.lifetime_min):
            made.append(self._record(self._next_offset))
            self._next_offset += self.interval_min
        return made

    @property
    def expired(self) -> bool:
        """True once the sensor's lifetime is over (its session is stopped)."""
        return self._next_offset > self.lifetime_min

    def _record(self, offset_min: int) -> CgmMeasurement:
        sensed = self.trace.sensed_mg_dl(offset_min)
        last = offset_min + self.interval_min > self.lifetime_min
        return self.store(offset_min, sensed, session_stopped=last)

    def store(
        self, offset_min: int, glucose_mg_dl: float, *, session_stopped: bool = False
    ) -> CgmMeasurement:
        """Put a record into memory as the firmware encodes it."""
        measurement = CgmMeasurement(
            FLAG_STATUS if session_stopped else 0,
            SFloat.from_value(round(glucose_mg_dl)),
            offset_min,
            status=SESSION_STOPPED if session_stopped else None,
            with_e2e_crc=self.e2e_crc,
        )
        self.racp.add(CgmRecord(measurement))
        return measurement

    # RACP ---------------------------------------------------------------------------------

    def _on_racp_write(self, connection: Connection, value: bytes) -> None:
        running = self.procedure is not None and not self.procedure.done()
        if self.check_racp_write(
            connection,
            value,
            racp=self.racp_char,
            records=self.measurement_char,
            records_bit=NOTIFY,
            busy=running,
        ):
            self._abort.set()
            return
        action = self.racp.on_write(bytes(value))
        self._abort.clear()
        self.procedure = asyncio.get_running_loop().create_task(self._run(connection, action))

    def _packets(self, records: tuple[CgmRecord, ...], mtu: int) -> list[list[bytes]]:
        """Records packed back to back into notifications of at most ATT_MTU - 3 octets."""
        packets: list[list[bytes]] = []
        size = 0
        for record in records:
            self.records_sent += 1
            raw = bytes(record.measurement)
            if self.faults.corrupt(self.records_sent):
                raw = raw[:-1] + bytes([raw[-1] ^ 0xFF])  # a wrong E2E-CRC
            if not packets or size + len(raw) > mtu - 3:
                packets.append([])
                size = 0
            packets[-1].append(raw)
            size += len(raw)
        return packets

    async def _run(self, connection: Connection, action: RacpAction[CgmRecord]) -> None:
        faults = self.faults
        sent = 0
        try:
            for packet in self._packets(action.records, connection.att_mtu):
                if self._abort.is_set():
                    break
                if faults.slow_response_s:
                    await asyncio.sleep(faults.slow_response_s)
                await self.device.notify_subscriber(
                    connection, self.measurement_char, b"".join(packet)
                )
                sent += len(packet)
                if faults.disconnect_after_records is not None and (
                    sent >= faults.disconnect_after_records
                ):
                    await self._disconnect(connection)
                    return
                if faults.power_off_after_records is not None and (
                    sent >= faults.power_off_after_records
                ):
                    await self.power_off()
                    return
            response = b"\x06\x00\x03\x01" if self._abort.is_set() else action.response
            if not faults.skip_final_response:
                await self.device.indicate_subscriber(connection, self.racp_char, response)
        except Exception as exc:  # the link dropped under us
            logger.debug("%s: RACP procedure ended: %r", self.address, exc)
