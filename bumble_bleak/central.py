"""The central side of the virtual radio: one Bumble `Device` acting as the host's BLE adapter.

A `CentralRadio` is what the bleak backend drives. It plays the part BlueZ plays on Linux: one
adapter shared by every `BleakScanner` and `BleakClient` of the process, with one bond store
(bonds survive reconnects for the life of the radio), one connection attempt at a time (a
controller has one initiator), and a pairing agent that answers passkey requests.

It runs either on a `VirtualAir` in the same process (`await air.central()`) or on any Bumble
transport (`await CentralRadio.open("tcp-client:127.0.0.1:PORT")` to join the virtual air of a
`homevitals sim run` in another process, or `usb:0` for a real dongle).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bumble import core, hci, pairing
from bumble.device import Advertisement, Connection, Device
from bumble.keys import MemoryKeyStore

from bumble_bleak.bonds import DurableKeyStore
from bumble_bleak.errors import BumbleBleakError

logger = logging.getLogger(__name__)

PasskeyAgent = Callable[[str], Awaitable[int | None]]
"""Answers "which passkey does the device show?" for an address; None refuses pairing."""

AdvertisementListener = Callable[[Advertisement], None]


class _CentralPairingDelegate(pairing.PairingDelegate):
    """Keyboard + display, like a phone or a hub with a pairing page: passkey entry when the
    peripheral shows a number, Just Works when it has no I/O."""

    def __init__(self, radio: CentralRadio, address: str) -> None:
        super().__init__(
            io_capability=pairing.PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT
        )
        self._radio = radio
        self._address = address

    async def get_number(self) -> int | None:
        passkey = self._radio.pending_passkeys.pop(self._address, None)
        if passkey is None and self._radio.passkey_agent is not None:
            passkey = await self._radio.passkey_agent(self._address)
        logger.debug("%s: passkey requested, %s", self._address, "given" if passkey else "none")
        return passkey

    async def compare_numbers(self, number: int, digits: int) -> bool:
        return True  # numeric comparison: the user confirms on the hub's page


class CentralRadio:
    """A host-side BLE adapter on Bumble (see the module docstring)."""

    def __init__(self, device: Device, transport: Any = None) -> None:
        self.device = device
        self._transport = transport
        self._connect_lock = asyncio.Lock()
        self._scan_listeners: dict[object, AdvertisementListener] = {}
        self._scanning = False
        self.passkey_agent: PasskeyAgent | None = None
        self.pending_passkeys: dict[str, int] = {}
        device.pairing_config_factory = self._pairing_config
        device.on("advertisement", self._on_advertisement)

    @classmethod
    async def start(cls, device: Device) -> CentralRadio:
        """Power on a central whose `Device` already has a host and controller."""
        radio = cls(device)
        await device.power_on()
        return radio

    @classmethod
    async def open(
        cls,
        transport_spec: str,
        *,
        address: str = "C0:11:22:33:44:66",
        bonds_path: Path | None = None,
    ) -> CentralRadio:
        """Open a central over a Bumble transport (`tcp-client:HOST:PORT`, `usb:0`, ...).

        With `bonds_path`, bonds are kept in that file (`DurableKeyStore`) and survive a
        restart; without it they live in memory only.

        Raises:
            BumbleBleakError: the transport cannot be opened.
        """
        from bumble.transport import open_transport  # noqa: PLC0415 (heavy, optional)

        try:
            transport = await open_transport(transport_spec)
        except Exception as exc:  # bumble raises many kinds (OSError, ValueError, ...)
            raise BumbleBleakError(f"cannot open transport {transport_spec!r}: {exc}") from exc
        device = Device.with_hci(
            "homevitals-central",
            hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
            transport.source,
            transport.sink,
        )
        device.keystore = (
            MemoryKeyStore() if bonds_path is None else DurableKeyStore(bonds_path, address)
        )
        radio = cls(device, transport)
        await device.power_on()
        return radio

    async def close(self) -> None:
        """Disconnect everything and close the transport, if this radio opened one."""
        for connection in list(self.device.connections.values()):
            try:
                await connection.disconnect()
            except Exception:  # already gone: nothing to do  # noqa: S112
                continue
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def _pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        delegate = _CentralPairingDelegate(self, str(connection.peer_address))
        return pairing.PairingConfig(sc=True, mitm=True, bonding=True, delegate=delegate)

    # scanning -----------------------------------------------------------------------------

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._scan_listeners.values()):
            listener(advertisement)

    async def add_scan_listener(self, listener: AdvertisementListener) -> object:
        """Start scanning (if not yet) and deliver each advertisement to `listener`."""
        token = object()
        self._scan_listeners[token] = listener
        if not self._scanning:
            self._scanning = True
            await self.device.start_scanning(filter_duplicates=False)
        return token

    async def remove_scan_listener(self, token: object) -> None:
        """Stop delivering to a listener; stop scanning when none is left."""
        self._scan_listeners.pop(token, None)
        if not self._scan_listeners and self._scanning:
            self._scanning = False
            await self.device.stop_scanning()

    # connections and bonds ----------------------------------------------------------------

    async def connect(self, address: str, timeout_s: float) -> Connection:
        """Connect to a peripheral (one attempt at a time, like a controller's initiator).

        Raises:
            TimeoutError: the peripheral did not accept a connection within `timeout_s`.
            BumbleBleakError: the controller reported another failure.
        """
        async with self._connect_lock:
            peer = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
            try:
                connection: Connection = await self.device.connect(peer, timeout=timeout_s)
            except core.TimeoutError as exc:
                raise TimeoutError(f"{address}: no connection in {timeout_s} s") from exc
            except (hci.HCI_Error, core.BaseBumbleError) as exc:
                raise BumbleBleakError(f"{address}: connection failed: {exc}") from exc
            return connection

    async def bond_of(self, address: str) -> Any:
        """The stored pairing keys for `address`, or None."""
        keystore = self.device.keystore
        return None if keystore is None else await keystore.get(address)

    async def forget_bond(self, address: str) -> None:
        """Delete the bond with `address` (the host side of `unpair`)."""
        keystore = self.device.keystore
        if keystore is not None and await keystore.get(address) is not None:
            await keystore.delete(address)
