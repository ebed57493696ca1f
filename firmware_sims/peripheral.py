"""The firmware common to every simulated device: a Bumble GATT server with Device Information
and Battery services, advertising, LE security (Just Works or passkey display), bonds, power.

Device models (glucose meter, blood-pressure cuff) subclass `SimulatedPeripheral` and add their
SIG service. Attributes a real device protects (RACP, the measurement CCCDs) are built with
`with_protected_cccd`, so an unbonded central gets the ATT error a real device sends.

Services: DIS 1.1 (0x180A), BAS 1.0 (0x180F). Security: Core v5.4 Vol 3 Part H (SMP).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from bumble import hci, pairing
from bumble.att import ATT_Error, Attribute, AttributeValue, AttributeValueV2, ErrorCode
from bumble.device import Connection, Device
from bumble.gatt import GATT_APPEARANCE_CHARACTERISTIC, Characteristic, Descriptor, Service

from bumble_bleak.advertising import build_advertising
from firmware_sims.air import Air
from firmware_sims.errors import FirmwareSimsError
from firmware_sims.models import DeviceModel, passkey_of, system_id_for
from firmware_sims.radio_timing import METER_TIMING, LinkTiming

logger = logging.getLogger(__name__)

CCCD_UUID = "2902"
# GLS 1.0.1 section 1.6 (and CGMS, PLXS alike): Attribute Protocol Application Error codes.
PROCEDURE_ALREADY_IN_PROGRESS = 0x80
CCCD_IMPROPERLY_CONFIGURED = 0x81
NOTIFY = 0x01
INDICATE = 0x02
ABORT = b"\x03\x00"
REPORT_STORED_RECORDS = 0x01
READABLE = Attribute.Permissions.READABLE
WRITEABLE = Attribute.Permissions.WRITEABLE
ENCRYPTED_WRITE = Attribute.Permissions.WRITE_REQUIRES_ENCRYPTION


class Security(StrEnum):
    """What pairing a device offers (SMP I/O capability)."""

    NONE = "none"  # no pairing needed, nothing protected
    JUST_WORKS = "just_works"  # NoInputNoOutput: LE Secure Connections Just Works
    PASSKEY = "passkey"  # DisplayOnly: the device shows a 6-digit passkey, the central types it


@dataclass(frozen=True, slots=True)
class Identity:
    """What the Device Information Service says about the device."""

    manufacturer: str
    model: str
    serial: str
    firmware: str = "1.0.0"
    hardware: str = "A"
    system_id: bytes = b"\x00" * 8  # models pass `models.system_id_for` (never all zeros)


class ModelSettings(TypedDict):
    """What a device model fixes about its peripheral (`SimulatedPeripheral` keywords)."""

    local_name: str
    identity: Identity
    security: Security
    passkey: int | None
    bonded_host_only: bool
    appearance: int
    link_timing: LinkTiming


def model_settings(
    model: DeviceModel, serial: str, passkey: int | None, *, name_digits: int
) -> ModelSettings:
    """The peripheral keywords of a device of `model` with this serial: advertised name (prefix
    and the serial's last `name_digits`), DIS identity with its System ID, security, passkey
    (`models.passkey_of`), bonding, GAP Appearance and link timing."""
    return ModelSettings(
        local_name=f"{model.name_prefix}{serial[-name_digits:]}",
        identity=Identity(
            model.manufacturer, model.model, serial, system_id=system_id_for(model, serial)
        ),
        security=Security(model.security),
        passkey=passkey_of(model, passkey),
        bonded_host_only=model.bonded_host_only,
        appearance=model.appearance,
        link_timing=model.link_timing,
    )


class _DeviceDelegate(pairing.PairingDelegate):
    def __init__(self, owner: SimulatedPeripheral) -> None:
        io = (
            pairing.PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY
            if owner.security is Security.PASSKEY
            else pairing.PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
        )
        super().__init__(io_capability=io)
        self._owner = owner

    async def accept(self) -> bool:
        return self._owner.accepts_pairing()

    async def generate_passkey(self) -> int:
        return self._owner.passkey_for_pairing()

    async def display_number(self, number: int, digits: int) -> None:
        self._owner.show_passkey(number)


class SimulatedPeripheral:
    """A simulated BLE peripheral on the virtual air (see the module docstring)."""

    advertised_services: Sequence[int] = ()

    def __init__(
        self,
        air: Air,
        *,
        local_name: str,
        address: str,
        identity: Identity,
        security: Security = Security.JUST_WORKS,
        passkey: int | None = 123456,
        bonded_host_only: bool = False,
        battery_level_pct: int = 87,
        advertising_interval_ms: float = 100.0,
        appearance: int = 0,
        link_timing: LinkTiming = METER_TIMING,
    ) -> None:
        if passkey is not None and not 0 <= passkey <= 999_999:
            raise FirmwareSimsError(f"passkey must be 0..999999, got {passkey}")
        if not 0 <= appearance <= 0xFFFF:
            raise FirmwareSimsError(f"appearance must be a uint16, got {appearance}")
        self.air = air
        self.local_name = local_name
        self.address = address
        self.identity = identity
        self.security = security
        self.passkey = passkey  # None: a new random passkey for every pairing
        self.appearance = appearance
        self.bonded_host_only = bonded_host_only
        self.battery_level_pct = battery_level_pct
        self.advertising_interval_ms = advertising_interval_ms
        self.refuse_pairing = False
        self.displayed_passkey: int | None = None
        self.passkey_shown = asyncio.Event()
        self.connections: list[Connection] = []
        self.connected = asyncio.Event()
        self.powered = False
        self.device: Device = air.new_device(local_name, address)
        self.controller = air.controller_of(self.device)
        self.link_timing = link_timing
        air.set_link_timing(self.device, link_timing)
        self.device.gatt_server.max_mtu = link_timing.att_mtu
        self.device.pairing_config_factory = self._pairing_config
        self.device.on("connection", self._on_connection)
        self.device.add_services(self.build_services())
        self._set_appearance(appearance)

    # GATT ---------------------------------------------------------------------------------

    def build_services(self) -> list[Service]:
        """The GATT database; subclasses append their SIG service."""
        dis = Service(
            "180A",
            [
                _static("2A29", self.identity.manufacturer.encode()),
                _static("2A24", self.identity.model.encode()),
                _static("2A25", self.identity.serial.encode()),
                _static("2A26", self.identity.firmware.encode()),
                _static("2A27", self.identity.hardware.encode()),
                _static("2A23", self.identity.system_id),
            ],
        )
        self.battery_level = read_only(
            "2A19",
            lambda _bearer: bytes([self.battery_level_pct]),
            Characteristic.Properties.NOTIFY,
        )
        return [dis, Service("180F", [self.battery_level])]

    def _set_appearance(self, appearance: int) -> None:
        """Bumble's GAP service says Appearance 0 (Unknown); a device says what it is."""
        for attribute in self.device.gatt_server.attributes:
            if attribute.type == GATT_APPEARANCE_CHARACTERISTIC:
                attribute.value = struct.pack("<H", appearance)

    def with_protected_cccd(self, characteristic: Characteristic[bytes]) -> Characteristic[bytes]:
        """Give `characteristic` a CCCD that only a bonded, encrypted link may write (GLS 1.0
        3.1, BLS 1.0 3.1), and return it."""
        permissions = READABLE | (ENCRYPTED_WRITE if self.security is not Security.NONE else 0)
        permissions |= WRITEABLE
        cccd = Descriptor(
            CCCD_UUID,
            permissions,
            AttributeValueV2(
                read=lambda bearer: self.device.gatt_server.read_cccd(bearer, characteristic),
                write=lambda bearer, value: self.device.gatt_server.write_cccd(
                    bearer, characteristic, value
                ),
            ),
        )
        characteristic.descriptors = [cccd]
        return characteristic

    def check_racp_write(
        self,
        connection: Connection,
        value: bytes,
        *,
        racp: Characteristic[bytes],
        records: Characteristic[bytes],
        records_bit: int,
        busy: bool,
    ) -> bool:
        """The RACP checks every record-keeping profile shares (GLS 1.0.1 1.6 and 3.4.2):
        indications off on the RACP -> 0x81; a procedure running -> only Abort passes (returns
        True), anything else 0x80; "report stored records" while `records` is not configured
        for `records_bit` (notify or indicate) -> 0x81, rather than look like an empty memory.

        Raises:
            ATT_Error: 0x80 or 0x81 as above.
        """
        server = self.device.gatt_server
        if not server.read_cccd(connection, racp)[0] & INDICATE:
            raise ATT_Error(error_code=CCCD_IMPROPERLY_CONFIGURED)
        if busy:
            if bytes(value) == ABORT:
                return True
            raise ATT_Error(error_code=PROCEDURE_ALREADY_IN_PROGRESS)
        reports = bytes(value[:1]) == bytes([REPORT_STORED_RECORDS])
        if reports and not server.read_cccd(connection, records)[0] & records_bit:
            raise ATT_Error(error_code=CCCD_IMPROPERLY_CONFIGURED)
        return False

    def protected_write(self) -> Attribute.Permissions:
        """Write permission of a control point that needs a bonded link."""
        if self.security is Security.NONE:
            return WRITEABLE
        return WRITEABLE | ENCRYPTED_WRITE

    # security -----------------------------------------------------------------------------

    def _pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        return pairing.PairingConfig(
            sc=True,
            mitm=self.security is Security.PASSKEY,
            bonding=True,
            delegate=_DeviceDelegate(self),
        )

    def accepts_pairing(self) -> bool:
        """Whether an incoming pairing request is accepted (the refuse-pairing fault says no)."""
        return not self.refuse_pairing and self.security is not Security.NONE

    def passkey_for_pairing(self) -> int:
        """The passkey this pairing uses: the fixed one, or a new random one (Core v5.4 Vol 3
        Part H 2.3.5.3: a passkey should be random for each pairing)."""
        if self.passkey is not None:
            return self.passkey
        return secrets.randbelow(1_000_000)

    def show_passkey(self, number: int) -> None:
        """What the device's display shows during passkey entry."""
        logger.info("%s: display shows the pairing passkey", self.address)
        self.displayed_passkey = number
        self.passkey_shown.set()

    async def bonded_hosts(self) -> list[str]:
        """Addresses of the hosts this device holds keys for."""
        keystore = self.device.keystore
        return [] if keystore is None else [name for name, _ in await keystore.get_all()]

    async def forget_bonds(self) -> None:
        """Drop every bond (factory reset, battery change on some devices)."""
        if self.device.keystore is not None:
            await self.device.keystore.delete_all()

    # connections and power ----------------------------------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        self.connections.append(connection)
        self.connected.set()
        connection.on("disconnection", lambda _reason: self._on_disconnection(connection))
        asyncio.get_running_loop().create_task(self._admit(connection))

    async def _admit(self, connection: Connection) -> None:
        if self.bonded_host_only:
            hosts = await self.bonded_hosts()
            if hosts and str(connection.peer_address) not in hosts:
                logger.info("%s: refusing a host it is not bonded to", self.address)
                await self._disconnect(connection)
                return
        await self.on_connected(connection)

    async def on_connected(self, connection: Connection) -> None:
        """Hook for models: runs once per new link (after the bonded-host check)."""

    def _on_disconnection(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)
        if not self.connections:
            self.connected.clear()
        self.on_disconnected(connection)

    def on_disconnected(self, connection: Connection) -> None:
        """Hook for models: a link went down."""

    async def _disconnect(self, connection: Connection) -> None:
        try:
            await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)
        except Exception as exc:  # the link may already be gone
            logger.debug("%s: disconnect: %s", self.address, exc)

    async def power_on(self) -> None:
        """Power on and advertise (again after every disconnection)."""
        if not self.powered:
            self.air.set_in_range(self.address, True)
            if not self.device.powered_on:
                await self.device.power_on()
        self.powered = True
        await self.device.stop_advertising()
        await self.device.start_advertising(
            advertising_data=build_advertising(
                local_name=self.local_name, service_uuids16=self.advertised_services
            ),
            scan_response_data=b"",
            auto_restart=True,
            advertising_interval_min=self.advertising_interval_ms,
            advertising_interval_max=self.advertising_interval_ms,
        )

    async def power_off(self) -> None:
        """Cut the power: the radio goes silent at once; the central notices only when its
        link-supervision timer expires (the air's `supervision_timeout_s`)."""
        self.powered = False
        if self.controller is None:  # a real radio: the host just stops
            await self.device.power_off()
            return
        self.air.set_in_range(self.address, False)  # from now on nothing it sends is heard
        for connection in list(self.controller.le_connections.values()):
            self.controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)
        await self.device.stop_advertising()

    async def disconnect_all(self) -> None:
        """The device ends every link itself (e.g. after sending its data)."""
        for connection in list(self.connections):
            await self._disconnect(connection)

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until a central is connected."""
        async with asyncio.timeout(timeout_s):
            await self.connected.wait()


def refuse_write(_bearer: object, _value: bytes) -> None:
    """Write handler of read-only attributes (Bumble's server does not check WRITEABLE).

    Raises:
        ATT_Error: always, Write Not Permitted (Core v5.4 Vol 3 Part F 3.4.1.1).
    """
    raise ATT_Error(error_code=ErrorCode.WRITE_NOT_PERMITTED)


def read_only(
    uuid: str, read: Callable[[object], bytes], properties: int = 0
) -> Characteristic[bytes]:
    """A readable characteristic whose value comes from `read` and that refuses writes."""
    return Characteristic(
        uuid,
        Characteristic.Properties.READ | properties,
        READABLE,
        AttributeValue(read=read, write=refuse_write),
    )


def _static(uuid16: str, value: bytes) -> Characteristic[bytes]:
    return read_only(uuid16, lambda _bearer: value)


def u16(value: int) -> bytes:
    """Little-endian uint16."""
    return struct.pack("<H", value)
