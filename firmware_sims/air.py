"""The virtual air: Bumble's in-process link bus with a link-supervision timeout and radio range.

Every simulated peripheral and every central (the bleak backend's adapter, or a bridge to another
process over HCI-over-TCP) is a Bumble `Controller` on one `SupervisedLink`. Bumble's own
`LocalLink` delivers every PDU instantly and never loses a connection: a peripheral that powers
off leaves the central connected forever. `SupervisedLink` adds what a real radio does
(Core v5.4 Vol 6 Part B 4.5.2, link supervision): traffic to or from a silent device (powered off
or out of range) is dropped, and a connection that hears nothing from its peer for
`supervision_timeout_s` is closed on the surviving side with HCI reason 0x08 (Connection
Timeout), which is what a host (and therefore bleak) sees from a real controller.

Airtime (`firmware_sims.radio_timing`): with `timing="realistic"` every data packet between a
central and a peripheral that registered its `LinkTiming` waits for its slot in a connection
event, in order, per direction; `timing="fast"` (the default, for tests) delivers at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from types import TracebackType
from typing import Any, Literal, Protocol

from bumble import hci, ll
from bumble.controller import Controller
from bumble.device import Device
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink

from bumble_bleak.backend import VirtualBleakClient, VirtualBleakScanner, radio_backends
from bumble_bleak.central import CentralRadio
from firmware_sims.errors import FirmwareSimsError
from firmware_sims.radio_timing import ConnectionEvents, LinkTiming

logger = logging.getLogger(__name__)

DEFAULT_SUPERVISION_TIMEOUT_S = 2.0


Timing = Literal["fast", "realistic"]


class _Pipe:
    """One direction of one connection: packets wait for their connection event, in order."""

    def __init__(self, link: SupervisedLink, timing: LinkTiming) -> None:
        self._link = link
        self._events = ConnectionEvents(timing, asyncio.get_running_loop().time())
        self._queue: deque[tuple[float, tuple[Any, ...]]] = deque()
        self._handle: asyncio.TimerHandle | None = None

    def send(self, args: tuple[Any, ...]) -> None:
        loop = asyncio.get_running_loop()
        due = self._events.schedule(loop.time())
        self._queue.append((due, args))
        if self._handle is None:
            self._handle = loop.call_at(due, self._deliver)

    def _deliver(self) -> None:
        loop = asyncio.get_running_loop()
        self._handle = None
        now = loop.time()
        while self._queue and self._queue[0][0] <= now + 1e-6:
            _, args = self._queue.popleft()
            self._link.deliver_acl_data(*args)
        if self._queue:
            self._handle = loop.call_at(self._queue[0][0], self._deliver)


class SupervisedLink(LocalLink):
    """A `LocalLink` that drops traffic of silent devices and times out their connections."""

    def __init__(self, supervision_timeout_s: float, timing: Timing = "fast") -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if supervision_timeout_s <= 0:
            raise FirmwareSimsError(
                f"supervision_timeout_s must be > 0, got {supervision_timeout_s!r}"
            )
        if timing not in ("fast", "realistic"):
            raise FirmwareSimsError(f"timing must be 'fast' or 'realistic', got {timing!r}")
        self.supervision_timeout_s = supervision_timeout_s
        self.silent: set[str] = set()
        self.timing: Timing = timing
        self.link_timings: dict[str, LinkTiming] = {}  # peripheral address -> its parameters
        self._pipes: dict[tuple[str, str], _Pipe] = {}

    def _is_silent(self, address: hci.Address | None) -> bool:
        return address is not None and str(address) in self.silent

    def send_acl_data(
        self, sender_controller: Controller, destination_address: hci.Address, *args: Any
    ) -> None:
        if self._is_silent(sender_controller.random_address) or self._is_silent(
            destination_address
        ):
            return
        sender, destination = str(sender_controller.random_address), str(destination_address)
        timing = self.link_timings.get(sender) or self.link_timings.get(destination)
        if self.timing == "fast" or timing is None:
            super().send_acl_data(sender_controller, destination_address, *args)
            return
        pipe = self._pipes.get((sender, destination))
        if pipe is None:
            pipe = self._pipes[(sender, destination)] = _Pipe(self, timing)
        pipe.send((sender_controller, destination_address, *args))

    def deliver_acl_data(
        self, sender_controller: Controller, destination_address: hci.Address, *args: Any
    ) -> None:
        """Hand a packet whose airtime has passed to the peer (unless one side went silent)."""
        if self._is_silent(sender_controller.random_address) or self._is_silent(
            destination_address
        ):
            return
        super().send_acl_data(sender_controller, destination_address, *args)

    def send_advertising_pdu(self, sender_controller: Controller, packet: Any) -> None:
        """Deliver an advertising-channel PDU to the controllers that would act on it.

        Bumble's link hands every PDU to every controller, which is O(N^2) work per
        advertising interval with N devices; a controller that neither scans, initiates nor
        syncs drops advertising reports anyway, so it is skipped (CONNECT_IND goes to all).
        """
        if self._is_silent(sender_controller.random_address):
            return
        loop = asyncio.get_running_loop()
        connect = isinstance(packet, ll.ConnectInd)
        for controller in self.controllers:
            if controller is sender_controller:
                continue
            if (
                connect
                or controller.le_scan_enable
                or controller.pending_le_connection is not None
                or controller.pending_periodic_advertising_syncs
                or controller.established_periodic_advertising_syncs
            ):
                loop.call_soon(controller.on_ll_advertising_pdu, packet)

    def send_ll_control_pdu(
        self, sender_address: hci.Address, receiver_address: hci.Address, packet: Any
    ) -> None:
        if self._is_silent(sender_address) or self._is_silent(receiver_address):
            return
        if self.find_le_controller(receiver_address) is None:
            return  # the peer is gone: a real radio's PDU just goes unheard
        super().send_ll_control_pdu(sender_address, receiver_address, packet)

    def go_silent(self, address: str) -> None:
        """Stop all traffic of `address` and start the supervision timer of its connections."""
        self.silent.add(address)
        loop = asyncio.get_running_loop()
        loop.call_later(self.supervision_timeout_s, self._supervise, address)

    def come_back(self, address: str) -> None:
        """Let `address` be heard again (back in range or powered on)."""
        self.silent.discard(address)

    def _supervise(self, address: str) -> None:
        if address not in self.silent:
            return  # back in range before the timeout: the links survive
        for controller in list(self.controllers):
            for connection in list(controller.le_connections.values()):
                if str(connection.peer_address) == address or (
                    str(connection.self_address) == address
                ):
                    logger.debug("%s: supervision timeout on %s", address, controller.name)
                    controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)


class VirtualController(Controller):
    """Bumble's `Controller`, plus the LE Create Connection Cancel behaviour it lacks.

    Core v5.4 Vol 4 Part E 7.8.13: after a successful cancel the controller reports the
    abandoned attempt with an LE Connection Complete event whose status is Unknown Connection
    Identifier (0x02). Bumble's controller only acknowledges the command, so a host waiting for
    a device that never advertises would wait forever instead of timing out.
    """

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        self.pending_le_connection = None
        if pending is not None:
            peer = pending.peer_address
            event = hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=peer.address_type,
                peer_address=peer,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
            # after the Command Complete this method's return value produces
            asyncio.get_running_loop().call_soon(self.send_hci_packet, event)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


class Air(Protocol):
    """Where a simulated peripheral lives: the virtual air, or one real radio (`RadioAir`)."""

    def new_device(self, name: str, address: str) -> Device:
        """A Bumble device for a peripheral (not yet powered on)."""

    def controller_of(self, device: Device) -> Controller | None:
        """The in-process controller of a device, None on a real radio."""

    def set_in_range(self, address: str, in_range: bool) -> None:
        """Radio range (only the virtual air can move a device)."""

    def set_link_timing(self, device: Device, timing: LinkTiming) -> None:
        """The link parameters of a peripheral's connections (only the virtual air models
        airtime; a real radio has its own)."""


class RadioAir:
    """One simulated peripheral on a Bumble transport (`usb:0`, `serial:...`, `tcp-client:...`):
    the firmware runs unchanged, the radio is real (or another process's)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._used = False

    @classmethod
    async def open(cls, spec: str) -> RadioAir:
        """Open the transport.

        Raises:
            FirmwareSimsError: it cannot be opened.
        """
        from bumble.transport import open_transport  # noqa: PLC0415 (only this mode needs it)

        try:
            return cls(await open_transport(spec))
        except Exception as exc:  # bumble raises OSError, ValueError, usb errors, ...
            raise FirmwareSimsError(f"cannot open transport {spec!r}: {exc}") from exc

    def new_device(self, name: str, address: str) -> Device:
        """The one device this radio carries.

        Raises:
            FirmwareSimsError: a second device was asked for (one controller, one peripheral).
        """
        if self._used:
            raise FirmwareSimsError("a real radio carries one simulated device")
        self._used = True
        device = Device.with_hci(
            name,
            hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
            self.transport.source,
            self.transport.sink,
        )
        device.keystore = MemoryKeyStore()
        return device

    def controller_of(self, device: Device) -> Controller | None:
        """None: the controller is hardware (or in another process)."""
        return None

    def set_in_range(self, address: str, in_range: bool) -> None:
        """A real radio cannot be moved out of range from here (no-op)."""

    def set_link_timing(self, device: Device, timing: LinkTiming) -> None:
        """A real radio times its own links (no-op)."""

    async def close(self) -> None:
        """Close the transport."""
        await self.transport.close()


class VirtualAir:
    """One shared virtual radio: a `SupervisedLink` plus the devices on it. `timing="fast"`
    delivers packets at once (tests); `"realistic"` gives them connection-event airtime.

    Use it as an async context manager (Bumble controllers need a running loop)::

        async with VirtualAir(supervision_timeout_s=1.0) as air:
            meter = GlucoseMeter(air, ...)
            await meter.power_on()
            scanner_cls, client_cls = air.backends()
    """

    def __init__(
        self,
        *,
        supervision_timeout_s: float = DEFAULT_SUPERVISION_TIMEOUT_S,
        timing: Timing = "fast",
    ) -> None:
        self.link = SupervisedLink(supervision_timeout_s, timing)
        self._devices: list[Device] = []
        self._controllers: dict[int, Controller] = {}
        self._central: CentralRadio | None = None  # built on first use
        self._central_lock = asyncio.Lock()

    async def __aenter__(self) -> VirtualAir:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def supervision_timeout_s(self) -> float:
        """Seconds a connection survives without hearing its peer."""
        return float(self.link.supervision_timeout_s)

    def new_device(self, name: str, address: str) -> Device:
        """Create a Bumble `Device` with its own `Controller` on this air (not yet powered on).

        Raises:
            FirmwareSimsError: the address is already on the air.
        """
        if any(str(d.random_address) == address for d in self._devices):
            raise FirmwareSimsError(f"address {address} is already on the air")
        device = Device(name, hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS))
        controller = VirtualController(name, link=self.link)
        device.host = Host()
        device.host.controller = controller
        device.keystore = MemoryKeyStore()
        self._devices.append(device)
        self._controllers[id(device)] = controller
        return device

    def controller_of(self, device: Device) -> Controller:
        """The controller (the radio) of a device made by `new_device`."""
        return self._controllers[id(device)]

    def set_link_timing(self, device: Device, timing: LinkTiming) -> None:
        """Run `device`'s connections with `timing` (airtime only when the air is realistic;
        the controller's LE data packet length always, so the host fragments as it would)."""
        self.controller_of(device).le_acl_data_packet_length = timing.data_length
        self.link.link_timings[str(device.random_address)] = timing

    def is_virtual(self) -> bool:
        """True: links here have a simulated supervision timeout and range."""
        return True

    def remove_device(self, device: Device) -> None:
        """Take a device's controller off the air for good (its links time out on the peers)."""
        controller = self.controller_of(device)
        self.link.go_silent(str(device.random_address))
        for connection in list(controller.le_connections.values()):
            controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)
        if controller in self.link.controllers:
            self.link.remove_controller(controller)
        if device in self._devices:
            self._devices.remove(device)
            del self._controllers[id(device)]

    def set_in_range(self, address: str, in_range: bool) -> None:
        """Move a device out of (or back into) range: out of range, its links time out."""
        if in_range:
            self.link.come_back(address)
        else:
            self.link.go_silent(address)

    async def central(self) -> CentralRadio:
        """The air's own central adapter (built on first use)."""
        async with self._central_lock:
            if self._central is None:
                device = self.new_device("homevitals-central", "C0:11:22:33:44:55")
                self._central = await CentralRadio.start(device)
            return self._central

    def backends(self) -> tuple[type[VirtualBleakScanner], type[VirtualBleakClient]]:
        """bleak backend classes on this air's central: `BleakScanner(backend=scanner)`."""
        return radio_backends(self.central)

    async def close(self) -> None:
        """Power every device off and stop the air's timers."""
        for device in list(self._devices):
            controller = self.controller_of(device)
            self.link.silent.add(str(device.random_address))
            for connection in list(controller.le_connections.values()):
                controller.on_le_disconnected(
                    connection, hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
                )
            controller.le_legacy_advertiser.stop()
            for advertising_set in controller.advertising_sets.values():
                advertising_set.stop()
        self._devices.clear()
        self._controllers.clear()
        self.link.silent.clear()
