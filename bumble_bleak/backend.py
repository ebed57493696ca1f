"""A bleak 3.x backend over a Bumble central: unmodified `BleakScanner`/`BleakClient` code runs
over any Bumble transport (a USB dongle, HCI over TCP, an in-process virtual radio).

bleak takes a backend *class* (`BleakScanner(backend=...)`, `BleakClient(..., backend=...)`) and
constructs it itself, so the classes are made per radio: `radio_backends(provider)` returns a
scanner and a client subclass bound to a `CentralRadio` (provided lazily, because a central must
be powered on inside the running loop). Behaviour follows bleak's BlueZ backend where bleak
leaves it open: the disconnected callback fires on every disconnect, a bonded peer is
re-encrypted on connect, `pair()` is a no-op on an encrypted link, `unpair()` also disconnects.
Passkeys: `await client.pair(passkey=123456)`, or a `CentralRadio.passkey_agent` (the role of
BlueZ's agent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bumble.device import Advertisement

from bumble_bleak.advertising import parse_advertising
from bumble_bleak.central import CentralRadio
from bumble_bleak.client import (
    REQUESTED_ATT_MTU,
    RadioProvider,
    VirtualBleakClient,
    bleak_uuid,
)
from bumble_bleak.errors import BumbleBleakError

__all__ = [
    "REQUESTED_ATT_MTU",
    "BleakBackends",
    "VirtualBleakClient",
    "VirtualBleakScanner",
    "backend_for",
    "bleak_uuid",
    "radio_backends",
]

logger = logging.getLogger(__name__)


class VirtualBleakScanner(BaseBleakScanner):
    """`BaseBleakScanner` over a `CentralRadio` (bound by `radio_backends`)."""

    _radio_provider: RadioProvider

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._token: object | None = None
        self._radio: CentralRadio | None = None

    async def start(self) -> None:
        """Start scanning; clears `seen_devices` as bleak requires."""
        self.seen_devices = {}
        self._radio = await type(self)._radio_provider()
        self._token = await self._radio.add_scan_listener(self._on_advertisement)

    async def stop(self) -> None:
        """Stop scanning."""
        if self._radio is not None and self._token is not None:
            await self._radio.remove_scan_listener(self._token)
        self._token = None

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        fields = parse_advertising(
            [(int(t), bytes(v)) for t, v in advertisement.data.ad_structures]
        )
        service_uuids = list(fields.service_uuids)
        if not self.is_allowed_uuid(service_uuids):
            return
        address = str(advertisement.address).split("/")[0]
        adv = AdvertisementData(
            local_name=fields.local_name,
            manufacturer_data=dict(fields.manufacturer_data),
            service_data=dict(fields.service_data),
            service_uuids=service_uuids,
            tx_power=fields.tx_power,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(
            address, address, fields.local_name, advertisement, adv
        )
        self.call_detection_callbacks(device, adv)


def radio_backends(
    provider: RadioProvider,
) -> tuple[type[VirtualBleakScanner], type[VirtualBleakClient]]:
    """Scanner and client backend classes bound to one radio (pass them as `backend=`)."""
    bound = {"_radio_provider": staticmethod(provider)}
    scanner = type("VirtualBleakScanner", (VirtualBleakScanner,), bound)
    client = type("VirtualBleakClient", (VirtualBleakClient,), bound)
    return scanner, client


class VirtualRadio(Protocol):
    """An in-process air (such as `firmware_sims.air.VirtualAir`): it owns the central."""

    async def central(self) -> CentralRadio:
        """The air's central adapter."""


class _TransportSettings(Protocol):
    @property
    def ble_transport(self) -> str:
        """`platform`, `virtual`, or a Bumble transport spec."""


@dataclass(frozen=True, slots=True)
class BleakBackends:
    """What to pass as `backend=`: None means bleak's platform backend (BlueZ on Linux)."""

    scanner: type[BaseBleakScanner] | None
    client: type[BaseBleakClient] | None
    radio: CentralRadio | None = None

    async def close(self) -> None:
        """Close the radio this factory opened (if any)."""
        if self.radio is not None:
            await self.radio.close()


async def backend_for(
    settings: _TransportSettings, *, air: VirtualRadio | None = None, bonds_path: Path | None = None
) -> BleakBackends:
    """Pick bleak's backend from `settings.ble_transport`.

    `platform`: bleak's own (BlueZ, CoreBluetooth, WinRT). `virtual`: the in-process `air`
    (such as a `firmware_sims.air.VirtualAir`). Anything else is a Bumble transport spec
    (`tcp-client:127.0.0.1:7700` joins a `homevitals sim run` in another process, `usb:0`
    drives a dongle). `bonds_path` keeps a Bumble transport's bonds in that file across
    restarts (bleak's platform backend leaves bonds to the OS; the virtual air keeps its own).

    Raises:
        BumbleBleakError: `virtual` without an air, or a transport that cannot be opened.
    """
    transport = settings.ble_transport
    if transport == "platform":
        return BleakBackends(None, None)
    if transport == "virtual":
        if air is None:
            raise BumbleBleakError("ble_transport 'virtual' needs a VirtualAir in this process")
        scanner, client = radio_backends(air.central)
        return BleakBackends(scanner, client)
    radio = await CentralRadio.open(transport, bonds_path=bonds_path)

    async def provide() -> CentralRadio:
        return radio

    scanner, client = radio_backends(provide)
    return BleakBackends(scanner, client, radio)
