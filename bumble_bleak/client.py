"""The `BaseBleakClient` half of the bleak backend over a Bumble central (see `bleak_backend`).

GATT procedures map one to one onto Bumble's GATT client; ATT errors become
`BleakGATTProtocolError`, a link lost under a request becomes `BleakError`, once, here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.device import Connection, Peer

from bumble_bleak.central import CentralRadio
from bumble_bleak.errors import BumbleBleakError

logger = logging.getLogger(__name__)

RadioProvider = Callable[[], Awaitable[CentralRadio]]
REQUESTED_ATT_MTU = 517  # what BlueZ asks for

_PROPERTY_NAMES: tuple[tuple[int, CharacteristicPropertyName], ...] = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)


def bleak_uuid(value: core.UUID) -> str:
    """A Bumble UUID as bleak spells it (128-bit, lowercase, dashed)."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


class _Translated:
    """Translate Bumble failures into what bleak code expects, once, at this edge."""

    def __init__(self, client: VirtualBleakClient, what: str) -> None:
        self._client = client
        self._what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: Any, tb: Any) -> None:
        if exc is None:
            return
        if isinstance(exc, att.ATT_Error):
            raise BleakGATTProtocolError(int(exc.error_code)) from exc
        current = asyncio.current_task()
        if isinstance(exc, asyncio.CancelledError) and not (
            current is not None and current.cancelling()
        ):
            # Bumble cancels pending requests when the link drops.
            raise BleakError(f"{self._client.address}: disconnected during {self._what}") from exc
        if isinstance(exc, core.ProtocolError):
            raise BleakError(f"{self._client.address}: {self._what} failed: {exc}") from exc
        if isinstance(exc, core.BaseBumbleError | hci.HCI_Error):
            raise BleakError(f"{self._client.address}: {self._what} failed: {exc}") from exc


class VirtualBleakClient(BaseBleakClient):
    """`BaseBleakClient` over a `CentralRadio` (bound by `radio_backends`)."""

    _radio_provider: RadioProvider

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.address = self.address.upper()
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._wanted_services = services
        self._radio: CentralRadio | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = att.ATT_DEFAULT_MTU
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        """The advertised local name, else the address with dashes (as bleak documents)."""
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        return self._mtu

    @property
    def is_connected(self) -> bool:
        """True while the link is up."""
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect, exchange the ATT MTU, discover services, then encrypt or pair.

        A no-op when already connected; if a step after the link is up fails (pairing refused,
        the device hangs up), the link is closed before the error propagates.

        Raises:
            TimeoutError: the device did not accept a connection in time.
            BleakError: the link failed during set-up, or pairing failed.
        """
        if self._connection is not None:
            return
        radio = await type(self)._radio_provider()
        self._radio = radio
        try:
            connection = await radio.connect(self.address, self._timeout)
        except BumbleBleakError as exc:
            raise BleakError(str(exc)) from exc
        self._connection = connection
        connection.on("disconnection", self._on_disconnection)
        self._peer = Peer(connection)
        try:
            with _Translated(self, "connect"):
                self._mtu = await self._peer.request_mtu(REQUESTED_ATT_MTU)
                await self._discover()
                if pair:
                    await self.pair()
                elif await radio.bond_of(self.address) is not None:
                    await self._encrypt_with_bond()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.disconnect()
            raise

    async def _encrypt_with_bond(self) -> None:
        assert self._connection is not None
        try:
            await self._connection.encrypt()
        except hci.HCI_Error as exc:
            # The peer lost its keys (e.g. a battery change): the link stays up unencrypted,
            # and protected attributes answer with an ATT security error, as with BlueZ.
            logger.warning("%s: re-encryption with the stored bond failed: %s", self.address, exc)

    async def _discover(self) -> None:
        assert self._peer is not None
        await self._peer.discover_services()
        for service in self._peer.services:
            await self._peer.discover_characteristics(service=service)
            for characteristic in service.characteristics:
                await self._peer.discover_descriptors(characteristic=characteristic)
        collection = BleakGATTServiceCollection()
        for service in self._peer.services:
            service_uuid = bleak_uuid(service.uuid)
            if self._wanted_services and service_uuid not in self._wanted_services:
                continue
            bleak_service = BleakGATTService(service, service.handle, service_uuid)
            collection.add_service(bleak_service)
            for characteristic in service.characteristics:
                properties = [n for bit, n in _PROPERTY_NAMES if characteristic.properties & bit]
                bleak_char = BleakGATTCharacteristic(
                    characteristic,
                    characteristic.handle,
                    bleak_uuid(characteristic.uuid),
                    properties,
                    lambda: self._mtu - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in characteristic.descriptors:
                    bleak_desc = BleakGATTDescriptor(
                        descriptor, descriptor.handle, bleak_uuid(descriptor.type), bleak_char
                    )
                    collection.add_descriptor(bleak_desc)
        self.services = collection

    def _on_disconnection(self, reason: int) -> None:
        logger.debug("%s: disconnected, reason 0x%02X", self.address, reason)
        self._connection = None
        self._peer = None
        self._subscriptions.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect (a no-op when not connected)."""
        connection = self._connection
        if connection is None:
            return
        with _Translated(self, "disconnect"):
            await connection.disconnect()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond (LE Secure Connections); `passkey=` answers passkey entry.

        Raises:
            BleakError: not connected, or pairing failed (wrong passkey, refused).
        """
        connection = self._require_connection()
        if connection.is_encrypted:
            return
        assert self._radio is not None
        passkey = kwargs.get("passkey")
        if passkey is not None:
            self._radio.pending_passkeys[self.address] = int(passkey)
        try:
            with _Translated(self, "pairing"):
                await connection.pair()
        finally:
            self._radio.pending_passkeys.pop(self.address, None)

    async def unpair(self) -> None:
        """Forget the bond and disconnect (bleak: "Unpairing will also disconnect")."""
        radio = self._radio or await type(self)._radio_provider()
        await radio.forget_bond(self.address)
        await self.disconnect()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        self._require_connection()
        assert self._peer is not None
        return self._peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a characteristic value (long reads included).

        Raises:
            BleakGATTProtocolError: the device answered with an ATT error.
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()
        with _Translated(self, "read"):
            return bytearray(await peer.read_value(characteristic.handle))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """Read a descriptor value.

        Raises:
            BleakGATTProtocolError: the device answered with an ATT error.
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()
        with _Translated(self, "descriptor read"):
            return bytearray(await peer.read_value(descriptor.handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic, with response (ATT Write Request) or without (Command).

        Raises:
            BleakGATTProtocolError: the device answered with an ATT error (with response).
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()
        with _Translated(self, "write"):
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor (always with response).

        Raises:
            BleakGATTProtocolError: the device answered with an ATT error.
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()
        with _Translated(self, "descriptor write"):
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe (notifications preferred over indications, as bleak asks).

        Raises:
            BleakGATTProtocolError: the CCCD write was refused (e.g. not bonded).
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        proxy = characteristic.obj
        previous = self._subscriptions.pop(characteristic.handle, None)
        if previous is not None:  # subscribing again replaces the callback, never adds one
            await _drop_subscriber(peer, proxy, previous)
        with _Translated(self, "start_notify"):
            try:
                await peer.subscribe(proxy, deliver, prefer_notify=True)
            except BaseException:
                await _drop_subscriber(peer, proxy, deliver)
                raise
        self._subscriptions[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe (writes 0x0000 to the CCCD).

        Raises:
            BleakGATTProtocolError: the CCCD write was refused.
            BleakError: not connected, or the link dropped.
        """
        peer = self._require_peer()
        deliver = self._subscriptions.pop(characteristic.handle, None)
        with _Translated(self, "stop_notify"):
            await peer.unsubscribe(characteristic.obj, deliver)


async def _drop_subscriber(peer: Peer, proxy: Any, subscriber: Callable[[bytes], None]) -> None:
    """Undo Bumble's local bookkeeping after a refused CCCD write (no bytes on the air)."""
    for table in (
        peer.gatt_client.notification_subscribers,
        peer.gatt_client.indication_subscribers,
    ):
        subscribers = table.get(proxy.handle)
        if subscribers is not None:
            subscribers.discard(subscriber)
            subscribers.discard(proxy)
            if not subscribers:
                del table[proxy.handle]
