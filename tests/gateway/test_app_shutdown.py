"""`gateway.app.run` stops on one cancellation, wherever it lands, and leaves nothing open.

Real parts: the simulated meter on the virtual air through real bleak, a real Mosquitto, the
page served by uvicorn. The only wrapper is around the air's central radio, to make a lost
cancellation happen every time instead of by chance (see `_LosesOneCancellation`).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bumble_bleak.central import CentralRadio
from firmware_sims.air import VirtualAir
from gateway.app import open_hub, run
from gateway.settings import GatewaySettings, load_settings
from tests.gateway.sims import PASSKEY, make_meter
from tests.support.servers import MosquittoServer, free_port

STOP_WITHIN_S = 20  # a hang guard, not a speed claim: a stuck hub never finishes


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


class _RadioLosingOneCancellation:
    """The air's real central radio, except that the first scan stop after `arm()` cancels the
    hub once and then loses that cancellation, as Bumble's HCI commands do by chance under
    Python 3.11 (`asyncio.wait_for` returns the command's result when the cancellation and the
    response arrive in the same loop iteration, CPython gh-86296)."""

    def __init__(self, radio: CentralRadio) -> None:
        self._radio = radio
        self.hub_task: asyncio.Task[None] | None = None
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._radio, name)

    async def remove_scan_listener(self, token: object) -> None:
        if self.hub_task is not None and self.lost == 0:
            self.hub_task.cancel()  # the operator's one cancel lands during the scan round
            try:
                await asyncio.Event().wait()  # the controller's answer is on its way ...
            except asyncio.CancelledError:
                self.lost += 1  # ... and arrives with the cancellation, which is lost
        await self._radio.remove_scan_listener(token)


class _LossyAir:
    """What `backend_for` needs of a `VirtualAir`: its central radio (here, wrapped)."""

    def __init__(self, air: VirtualAir) -> None:
        self._air = air
        self.radio: _RadioLosingOneCancellation | None = None

    async def central(self) -> _RadioLosingOneCancellation:
        if self.radio is None:
            self.radio = _RadioLosingOneCancellation(await self._air.central())
        return self.radio


def _settings(tmp_path: Path, mosquitto: MosquittoServer, **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {
        "gateway_id": "gw-stop",
        "data_dir": tmp_path / "gateway",
        "mqtt_host": mosquitto.host,
        "mqtt_port": mosquitto.port,
        "ble_transport": "virtual",
        "scan_s": 0.3,
        "scan_idle_s": 0.0,
        "meter_sync_interval_s": 0.0,
        "pace_s": 0.0,
        "silence_timeout_s": 1.0,
        "page_enabled": False,
        "page_port": free_port(),
    }
    values.update(overrides)
    return load_settings(None, **values)


async def _stopped(task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(STOP_WITHIN_S):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_one_cancel_stops_the_hub_even_when_a_library_loses_it(
    air: VirtualAir, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    meter = make_meter(air, records=3)
    await meter.power_on()
    settings = _settings(tmp_path, mosquitto)
    async with open_hub(settings, air=air) as hub:  # a paired meter: rounds also connect
        paired = await hub.gateway.pair(meter.address, "p-1", passkey=PASSKEY, scan_s=0.3)
        assert paired.outcome == "complete", paired.detail
    lossy = _LossyAir(air)
    task = asyncio.create_task(run(settings, air=lossy))
    while lossy.radio is None:  # noqa: ASYNC110 - the hub opens the radio on its first scan
        await asyncio.sleep(0.01)
    lossy.radio.hub_task = task
    await _stopped(task)
    assert lossy.radio.lost == 1  # the cancellation really was lost below the gateway


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_cancelling_the_hub_closes_the_pairing_page(
    air: VirtualAir, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, mosquitto, page_enabled=True)
    task = asyncio.create_task(run(settings, air=air))
    url = f"http://127.0.0.1:{settings.page_port}"
    async with httpx.AsyncClient(base_url=url) as client:
        async with asyncio.timeout(STOP_WITHIN_S):
            while True:
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
    task.cancel()
    await _stopped(task)
    gc.collect()  # an unclosed listening socket warns here (warnings are errors)
    assert not _accepts(settings.page_port)  # nobody listens any more
