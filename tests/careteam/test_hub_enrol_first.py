"""A hub's first enrolment from its own page: a hub that has no identity yet runs in enrol-only
mode (the page shows only the enrolment-code form, behind the page's guard), redeems the code
typed there at the real enrolment endpoint, stores the identity and starts, in the same process
and on the same page socket: headless Chromium follows from the code to the running hub's page,
and the hub reaches the shipped broker's password listener (8884, TLS) with the account the
endpoint installed. Beyond loopback the enrol-only page asks for the hub PIN first, and the
session survives the switch to the full page."""

from __future__ import annotations

import asyncio
import re
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion
from playwright.async_api import Browser

from careteam import enrolment_store
from careteam.broker import MosquittoPasswordFile, sighup_pid
from careteam.enrol_app import create_app
from firmware_sims.air import VirtualAir
from gateway.app import PageSwitch, hub_page, page_guard, run
from gateway.enrolment import HubPatient, Identity, identity_path, load_identity, save_identity
from gateway.errors import SettingsError
from gateway.settings import GatewaySettings, load_settings
from tests.alerts.delivery.receiver import UvicornThread
from tests.careteam.conftest import T0
from tests.careteam.test_enrolment import broker
from tests.gateway.sims import hub
from tests.gateway.test_page_security import Served
from tests.gateway.test_pairing_page import browser, form_token
from tests.support.broker_config import SERVER_NAME, ShippedBroker
from tests.support.record import TEST_ACTOR, ensure_patient
from tests.support.servers import MosquittoServer, free_port

__all__ = ["broker", "browser"]
WITHIN_S = 30  # hang guards, not speed claims


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


class _StatusWatcher:
    """Ingest's account on the shipped broker's internal listener, watching hubs' status."""

    def __init__(self, broker: ShippedBroker) -> None:
        self.online: set[str] = set()
        self.seen = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, "ingest", protocol=mqtt.MQTTv5)
        self.client.username_pw_set("ingest", broker.ingest_password)
        self.client.on_connect = lambda c, *_: c.subscribe("hv/v1/gw/+/status", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.ports[1883])
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload == b"online":
            self.online.add(msg.topic.split("/")[3])
            self.seen.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _hub_settings(tmp_path: Path, **values: Any) -> GatewaySettings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "hub",
        "ble_transport": "virtual",
        "scan_s": 0.3,
        "scan_idle_s": 0.2,
        "page_port": free_port(),
    }
    return load_settings(None, **(base | values))


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    async with asyncio.timeout(WITHIN_S):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_new_hub_enrols_from_its_page_and_starts(
    pg: sa.Engine, broker: ShippedBroker, browser: Browser, air: VirtualAir, tmp_path: Path
) -> None:
    assert broker.process is not None and broker.process.proc is not None
    accounts = MosquittoPasswordFile(
        broker.config_dir / "passwd-gateways", sighup_pid(broker.process.proc.pid)
    )
    with pg.begin() as conn:
        ensure_patient(conn, "p-wang", T0)
        code = enrolment_store.create_code(conn, ["p-wang"], actor=TEST_ACTOR, at=T0).code
    endpoint = UvicornThread(create_app(pg, accounts, lambda: T0))
    endpoint.start()
    watcher = _StatusWatcher(broker)
    settings = _hub_settings(
        tmp_path,
        enrolment_url=f"http://127.0.0.1:{endpoint.port}",
        mqtt_host=SERVER_NAME,
        mqtt_port=broker.ports[8884],
        mqtt_tls_ca=broker.ca,
    )
    assert settings.gateway_id is None  # nothing to start with but the enrolment URL
    task = asyncio.create_task(run(settings, air=air))
    url = f"http://127.0.0.1:{settings.page_port}"
    try:
        async with httpx.AsyncClient(base_url=url, headers={"origin": url}) as client:
            async with asyncio.timeout(WITHIN_S):
                while True:
                    try:
                        first = await client.get("/")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.05)
            # Enrol-only: the form and nothing else; the device routes say to enrol first,
            # and the guard stands in front as it does for the full page.
            assert first.status_code == 200 and 'id="enrol-form"' in first.text
            assert 'id="scan"' not in first.text
            token = form_token(first.text)
            scan = await client.post("/scan", content=token)
            assert scan.status_code == 409 and "Enrol this hub" in scan.text
            forged = await client.post("/enrol", content=token, headers={"origin": "http://x"})
            assert forged.status_code == 403
            assert (await client.get("/", headers={"host": "rebind.test"})).status_code == 421

        context = await browser.new_context(locale="en-GB")
        page = await context.new_page()
        await page.goto(url)
        assert await page.inner_text("h1") == "Home hub: enrol"
        await page.fill("#enrol-code", "ZZZZZ-ZZZZZ")
        await page.click("#enrol")
        assert "not accepted" in await page.inner_text("#message")
        await page.fill("#enrol-code", code.lower().replace("-", " "))  # as typed by hand
        await page.click("#enrol")
        # The running hub's page replaces the enrol-only one (the "starting" page reloads).
        await page.wait_for_function(
            "document.querySelector('h1').innerText === 'Home hub: your devices'",
            timeout=WITHIN_S * 1000,
        )
        assert await page.locator(".hub-patient").all_inner_texts() == ["P. P."]
        assert await page.locator("#scan").count() == 1
        await context.close()

        identity = load_identity(settings.data_dir)
        assert identity is not None and identity.mqtt_password
        assert stat.S_IMODE(identity_path(settings.data_dir).stat().st_mode) == 0o600
        # The hub is on the broker with the account the endpoint installed.
        assert await asyncio.to_thread(watcher.seen.wait, WITHIN_S)
        assert identity.gateway_id in watcher.online
        assert not task.done()
    finally:
        await _stop(task)
        watcher.close()
        endpoint.stop()


async def test_a_waiting_hub_starts_on_an_identity_stored_from_a_terminal(
    mosquitto: MosquittoServer, air: VirtualAir, tmp_path: Path
) -> None:
    settings = _hub_settings(
        tmp_path,
        enrolment_url="http://127.0.0.1:9",  # never reached: the code is redeemed elsewhere
        mqtt_host=mosquitto.host,
        mqtt_port=mosquitto.port,
    )
    task = asyncio.create_task(run(settings, air=air))
    url = f"http://127.0.0.1:{settings.page_port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            async with asyncio.timeout(WITHIN_S):
                while True:
                    try:
                        if "enrol-form" in (await client.get("/")).text:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.05)
            # What `homevitals gateway enrol CODE` leaves behind.
            save_identity(
                settings.data_dir,
                Identity("gw-terminal", "gw-terminal", None, (HubPatient("p-1", "W. L."),)),
            )
            async with asyncio.timeout(WITHIN_S):
                while "Home hub: your devices" not in (await client.get("/")).text:  # noqa: ASYNC110 - a page poll
                    await asyncio.sleep(0.1)
        assert not task.done()
    finally:
        await _stop(task)


async def test_a_hub_with_no_way_to_enrol_says_so(tmp_path: Path) -> None:
    for values in ({"page_enabled": False, "enrolment_url": "http://e"}, {}):
        with pytest.raises(SettingsError) as caught:
            await run(_hub_settings(tmp_path, **values))
        assert caught.value.key == "gateway_id"


async def test_beyond_loopback_the_enrol_only_page_needs_the_pin_and_keeps_the_session(
    air: VirtualAir, tmp_path: Path
) -> None:
    shown: list[str] = []
    settings = load_settings(
        None, data_dir=tmp_path / "hub", page_host="0.0.0.0", enrolment_url="http://e"
    )
    guard = page_guard(settings, show=shown.append)
    pin = re.sub(r"\D", "", shown[0].rsplit(":", 1)[1])
    switch = PageSwitch()
    switch.app = hub_page(settings, None, guard)
    async with (
        Served(switch) as served,
        httpx.AsyncClient(base_url=served.url, headers={"origin": served.url}) as client,
    ):
        first = await client.get("/")
        assert first.status_code == 303 and first.headers["location"] == "/login"
        token = form_token((await client.get("/login")).text)
        assert (await client.post("/enrol", content=token + b"&code=X")).status_code == 401
        assert (await client.post("/login", content=token + f"&pin={pin}".encode())).is_redirect
        assert 'id="enrol-form"' in (await client.get("/")).text
        # Enrolled: the composition root swaps the full page in behind the same guard.
        async with hub(air, tmp_path / "running") as running:
            switch.app = hub_page(settings, running.gateway, guard)
            home = await client.get("/")
            assert home.status_code == 200 and "Home hub: your devices" in home.text
