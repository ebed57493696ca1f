"""HCI over TCP into the virtual air, so a gateway in another process can join it.

A Bumble `tcp-server:` transport is bridged to one more `Controller` on the air's link: the
remote process runs a Bumble host on `tcp-client:HOST:PORT` (for example through
`bumble_bleak.backend.backend_for(settings)` with `ble_transport="tcp-client:..."`) and
sees the simulated devices as if it had its own radio. One remote host per endpoint (a
controller has one host); when it goes away, its links are closed on the air as a real
controller's would be when its host dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

from bumble import hci, ll
from bumble.controller import Controller
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from firmware_sims.air import VirtualAir, VirtualController

logger = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25


@dataclass
class HciEndpoint:
    """A listening HCI-over-TCP endpoint on the air."""

    host: str
    port: int
    controller: Controller
    _transport: Any
    _watch: asyncio.Task[None]

    @property
    def spec(self) -> str:
        """The Bumble transport spec a remote host uses to join."""
        return f"tcp-client:{self.host}:{self.port}"

    async def close(self) -> None:
        """Stop listening and drop the remote host's links."""
        self._watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._watch
        _drop_links(self.controller)
        connection = self._transport.sink.transport
        if connection is not None:
            connection.close()
        self._transport.server.close()
        await self._transport.server.wait_closed()
        await self._transport.close()


def _drop_links(controller: Controller) -> None:
    for connection in list(controller.le_connections.values()):
        connection.send_ll_control_pdu(
            ll.TerminateInd(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)
        )
        controller.on_le_disconnected(connection, hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)


async def _watch_host(transport: Any, controller: Controller) -> None:
    # Bumble's server sink forgets its client on connection loss; a dead host's links go too.
    had_client = False
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        has_client = transport.sink.transport is not None
        if had_client and not has_client:
            logger.info("HCI bridge: remote host left, closing its links")
            _drop_links(controller)
            controller.le_legacy_advertiser.stop()
        had_client = has_client


async def open_hci_endpoint(air: VirtualAir, host: str = "127.0.0.1", port: int = 0) -> HciEndpoint:
    """Listen for one remote host on `host:port` (0 = a free port) and bridge it to the air.

    Raises:
        OSError: the address cannot be bound.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    transport = await open_tcp_server_transport_with_socket(sock)
    controller = VirtualController(
        "hci-bridge", host_source=transport.source, host_sink=transport.sink, link=air.link
    )
    watch = asyncio.get_running_loop().create_task(_watch_host(transport, controller))
    bound_port = int(sock.getsockname()[1])
    logger.info("HCI bridge listening on %s:%d", host, bound_port)
    return HciEndpoint(host, bound_port, controller, transport, watch)
