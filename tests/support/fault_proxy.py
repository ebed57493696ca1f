"""A small TCP fault proxy of our own (asyncio), put between two real peers in the tests.

It listens on a loopback port and forwards every connection to an upstream address. Its mode
can be switched at any time, from any thread:

- ``PASS``: forward both ways (optionally with `delay_s` added to every chunk, each way);
- ``DROP``: close every open connection now (the peers see a reset) and close new ones at once;
- ``HALF_OPEN``: the open connections go silent both ways without being closed (the far end
  vanished: only a keepalive can tell); new connections are forwarded normally;
- ``BLACKHOLE``: a partition: open connections go silent, new ones are accepted and never
  forwarded, nothing is closed;
- ``REFUSE``: the port stops listening (connection refused), open connections are reset.

The proxy runs its own event loop in a daemon thread, so synchronous and asyncio tests use it
alike. It counts connections, so a test can tell a reconnect storm from a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK = 65536


class Mode(enum.Enum):
    PASS = "pass"
    DROP = "drop"
    HALF_OPEN = "half_open"
    BLACKHOLE = "blackhole"
    REFUSE = "refuse"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(eq=False)  # hashed by identity: links live in a set
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    silent: bool = False  # forwarding stopped (half-open, blackhole)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is None:
                continue
            sock = writer.get_extra_info("socket")
            if sock is not None:  # SO_LINGER 0: close with RST, as a crashed peer or NAT does
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """Loopback TCP proxy to `upstream_port` with switchable faults (see the module doc)."""

    def __init__(self, upstream_port: int, *, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port or free_port()
        self.mode = Mode.PASS
        self.delay_s = 0.0
        self.connections = 0  # accepted connections, ever
        self.forwarded_bytes = 0
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="proxy")

    # -- control (any thread) ------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen)
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def set_mode(self, mode: Mode, *, delay_s: float | None = None) -> None:
        """Switch to `mode` (and set the per-chunk delay, if given)."""
        self._call(lambda: self._apply(mode, delay_s))

    @property
    def open_links(self) -> int:
        return len(self._links)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, fn: Callable[[], object]) -> None:
        async def run() -> None:
            result = fn()
            if asyncio.iscoroutine(result):
                await result

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    # -- inside the loop -----------------------------------------------------------------------

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _shutdown(self) -> None:
        await self._unlisten()
        for link in list(self._links):
            link.reset()
        self._links.clear()

    async def _apply(self, mode: Mode, delay_s: float | None) -> None:
        self.mode = mode
        if delay_s is not None:
            self.delay_s = delay_s
        if mode in (Mode.DROP, Mode.REFUSE):
            for link in list(self._links):
                link.reset()
            self._links.clear()
        elif mode in (Mode.HALF_OPEN, Mode.BLACKHOLE):
            for link in self._links:
                link.silent = True
        if mode is Mode.REFUSE:
            await self._unlisten()
        else:
            await self._listen()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        link = _Link(writer)
        if self.mode in (Mode.DROP, Mode.REFUSE):
            link.reset()
            return
        self._links.add(link)
        if self.mode is Mode.BLACKHOLE:
            link.silent = True
            return  # accepted, never forwarded, never closed
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            self._links.discard(link)
            link.reset()  # upstream down: the client sees the connection fail
            return
        link.upstream = up_writer
        link.tasks = [
            asyncio.ensure_future(self._pump(link, reader, up_writer)),
            asyncio.ensure_future(self._pump(link, up_reader, writer)),
        ]

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if link.silent:
                    continue  # swallowed: the sender's TCP stack thinks it was delivered
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                self.forwarded_bytes += len(data)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if not link.silent:  # an orderly close passes through; a silent link stays open
                self._links.discard(link)
                for w in (link.client, link.upstream):
                    if w is not None:
                        w.close()
