"""The BLE session adapter: runs a sans-IO session over a connected `bleak.BleakClient`.

The adapter moves bytes and never parses them: it executes the session's commands (pair, read,
subscribe, write), waits for the pacing time each command carries, feeds completions,
notifications and the disconnect back in, calls `tick` when the session's deadline passes,
and hands the session's events to `on_event` (which stores records before the session goes on,
so nothing is acknowledged further up before it is on disk). bleak's exceptions are translated
here, once, into session inputs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError

from devices.sessions import (
    BaseSession,
    Command,
    Disconnect,
    Disconnected,
    Event,
    GattInventory,
    Input,
    Instant,
    Notified,
    OperationFailed,
    Pair,
    PairDone,
    Read,
    ReadDone,
    SessionEnded,
    Subscribe,
    SubscribeDone,
    Write,
    WriteDone,
)
from gateway.cancelling import checkpoint
from gateway.progress import MEASUREMENT_UUIDS, Step, StepSink

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
EventSink = Callable[[Event], Awaitable[None]]


def inventory_of(client: BleakClient) -> GattInventory:
    """What service discovery found: characteristic uuid -> properties."""
    chars: dict[str, frozenset[str]] = {}
    for service in client.services:
        for char in service.characteristics:
            chars[char.uuid.lower()] = frozenset(char.properties) | chars.get(
                char.uuid.lower(), frozenset()
            )
    return GattInventory(chars)


class SessionLink:
    """Carries one session over one connection. Create it before the `BleakClient`, and pass
    `on_disconnect` as the client's `disconnected_callback`."""

    def __init__(
        self,
        clock: Clock,
        *,
        passkey: int | None = None,
        op_timeout_s: float = 30.0,
        on_step: StepSink | None = None,
    ):
        self._clock = clock
        self._passkey = passkey
        self._op_timeout_s = op_timeout_s
        self._inputs: asyncio.Queue[Input] = asyncio.Queue()
        self._on_step = on_step
        self.received = 0  # measurements notified so far (what the page says it is reading)

    def on_disconnect(self, client: BleakClient) -> None:
        """bleak's disconnected callback."""
        self._inputs.put_nowait(Disconnected("link lost"))

    def _on_notify(self, char: BleakGATTCharacteristic, data: bytearray) -> None:
        uuid = char.uuid.lower()
        self._inputs.put_nowait(Notified(uuid, bytes(data)))
        if uuid in MEASUREMENT_UUIDS:
            self.received += 1
            self._step(Step.READING)

    def _step(self, step: Step) -> None:
        if self._on_step is not None:
            self._on_step(step, self.received)

    def _now(self) -> Instant:
        return Instant(time.monotonic(), self._clock())

    async def run(
        self, client: BleakClient, session: BaseSession, on_event: EventSink
    ) -> SessionEnded:
        """Run `session` to its end over `client` (already connected).

        Returns the session's `SessionEnded`. Never raises for device behaviour: link loss,
        ATT errors and silence become session inputs and end in an `Outcome`.
        """
        pending: list[Command | Event] = list(session.start(self._now()))
        ended: SessionEnded | None = None
        while True:
            checkpoint()  # a cancellation lost in a GATT operation below stops the session here
            while pending:
                out = pending.pop(0)
                if isinstance(out, SessionEnded):
                    ended = out
                    await on_event(out)
                elif isinstance(out, Pair | Read | Subscribe | Write | Disconnect):
                    if isinstance(out, Disconnect):
                        continue  # the caller's `async with` disconnects
                    result = await self._execute(client, out)
                    if result is not None:
                        pending.extend(session.feed(result, self._now()))
                else:
                    await on_event(out)
                # Notifications that arrived meanwhile go in, in order, before the next command.
                while not self._inputs.empty() and not session.ended:
                    pending.extend(session.feed(self._inputs.get_nowait(), self._now()))
            if session.ended:
                assert ended is not None
                return ended
            deadline = session.deadline_s
            wait_s = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can lose a cancellation.
                async with asyncio.timeout(wait_s):
                    event = await self._inputs.get()
            except TimeoutError:
                pending.extend(session.tick(self._now()))
            else:
                pending.extend(session.feed(event, self._now()))

    async def _execute(self, client: BleakClient, command: Command) -> Input | None:
        delay = command.not_before_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        uuid = getattr(command, "uuid", "")
        try:
            async with asyncio.timeout(self._op_timeout_s):
                match command:
                    case Pair():
                        self._step(Step.BONDING)
                        if self._passkey is None:
                            await client.pair()
                        else:
                            await client.pair(passkey=self._passkey)
                        return PairDone(True)
                    case Read(uuid=uuid):
                        return ReadDone(uuid, bytes(await client.read_gatt_char(uuid)))
                    case Subscribe(uuid=uuid):
                        await client.start_notify(uuid, self._on_notify)
                        return SubscribeDone(uuid)
                    case Write(uuid=uuid, data=data):
                        await client.write_gatt_char(uuid, data, response=True)
                        return WriteDone(uuid)
        except TimeoutError:
            return (
                PairDone(False, "timed out")
                if isinstance(command, Pair)
                else OperationFailed(uuid, "timed out")
            )
        except BleakError as exc:
            if not client.is_connected:
                return Disconnected(f"link lost during {type(command).__name__}: {exc}")
            if isinstance(command, Pair):
                return PairDone(False, str(exc))
            code = int(exc.code) if isinstance(exc, BleakGATTProtocolError) else None
            return OperationFailed(uuid, str(exc), code)
        return None
