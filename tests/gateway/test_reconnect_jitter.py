"""Issue 14: hubs cut off from the broker together come back out of step (real Mosquitto).

Three hubs (publishers with their own random sources) lose the broker when it stops, and
reconnect when it is back. Each wait paho makes before a reconnect attempt is the hub's own
jittered exponential delay; the test checks the waits' shape, that the hubs chose different
ones, and that paho really waited them (elapsed time is a lower bound, never an upper one).
"""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gateway.publisher import MqttConfig, Publisher
from tests.support.servers import MosquittoServer

HUBS = 3


async def _until(predicate: object, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - polls events
            await asyncio.sleep(0.01)


async def test_reconnect_waits_are_jittered_per_hub_and_honoured(tmp_path: Path) -> None:
    server = MosquittoServer(tmp_path / "mq")
    server.start()
    try:
        hubs = [
            Publisher(f"gw-jitter-{i}", MqttConfig(server.host, server.port), rng=random.Random(i))
            for i in range(HUBS)
        ]
        async with AsyncExitStack() as stack:
            for hub in hubs:
                await stack.enter_async_context(hub)
            await _until(lambda: all(h.connected.is_set() for h in hubs))
            before = [len(h.reconnect_waits_s) for h in hubs]
            server.stop()
            await _until(lambda: not any(h.connected.is_set() for h in hubs))
            lost_at = time.monotonic()
            await asyncio.sleep(1.5)  # connection attempts fail meanwhile and back off
            server.start()
            back_at: dict[Publisher, float] = {}
            waited: dict[Publisher, list[float]] = {}
            while len(back_at) < HUBS:
                await _until(lambda: any(h.connected.is_set() for h in hubs if h not in back_at))
                for hub, n in zip(hubs, before, strict=True):
                    if hub.connected.is_set() and hub not in back_at:
                        back_at[hub] = time.monotonic()
                        waited[hub] = hub.reconnect_waits_s[n:]  # before the clean stop's
        outage_waits = [waited[h] for h in hubs]
        for hub, waits in zip(hubs, outage_waits, strict=True):
            assert len(waits) >= 2, waits  # the wait after the drop, then after failed attempts
            for attempt, wait in enumerate(waits, start=1):
                base = min(30.0, 1.0 * 2 ** (attempt - 1))
                assert 0.8 * base <= wait <= 1.2 * base, (attempt, waits)
            # paho waited every one of them before the attempt that succeeded (the last one
            # chosen was waited too: no wait is chosen after a success).
            assert back_at[hub] - lost_at >= sum(waits) - 0.05, (waits, back_at[hub] - lost_at)
        firsts = [waits[0] for waits in outage_waits]
        assert len(set(firsts)) == HUBS, firsts  # out of step, not one schedule for all
    finally:
        server.stop()


@pytest.mark.parametrize("attempts", [1, 3, 10])
def test_the_default_schedule(attempts: int) -> None:
    backoff = MqttConfig("h", 1).reconnect
    base = min(30.0, 2.0 ** (attempts - 1))
    assert backoff.delay_s(attempts, 0.0) == pytest.approx(0.8 * base)
    assert backoff.delay_s(attempts, 0.5) == pytest.approx(base)
