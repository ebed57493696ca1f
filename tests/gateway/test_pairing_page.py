"""The pairing page in a real headless Chromium (Debian's, through Playwright) on a phone-sized
screen: pair a simulated meter with its passkey, see its readings in the patient's language and
unit, devices by model and serial ending (never the radio address), 48 px touch targets in both
languages, and unpair only after saying yes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, Locator, Page, async_playwright

from firmware_sims.air import VirtualAir
from gateway.enrolment import HubIdentity
from gateway.page import create_page
from gateway.service import Gateway
from tests.gateway.sims import HUB_PATIENTS, PASSKEY, hub, make_meter
from tests.support.servers import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


def chromium_installed() -> bool:
    return Path(CHROMIUM).exists()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if not chromium_installed():
        pytest.fail("Debian's chromium is required (scripts/install-system-deps.sh installs it)")
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
        )  # fmt: skip
        assert context.browser is not None
        yield context.browser
        await context.close()


def form_token(html: str) -> bytes:
    """`csrf=<token>` as the page's forms carry it."""
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "the page's forms carry a CSRF token"
    return f"csrf={match.group(1)}".encode()


async def serve(
    gateway: Gateway, identity: HubIdentity, *, timezone: str = "UTC"
) -> tuple[str, uvicorn.Server, asyncio.Task[None]]:
    port = free_port()
    config = uvicorn.Config(
        create_page(gateway, scan_s=0.5, hub=identity, timezone=timezone),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.02)
    return f"http://127.0.0.1:{port}", server, task


SCANS = 10


async def look_until_found(page: Page, *selectors: str) -> list[Locator]:
    """Press "Look for devices" until every selector is on the page, as a patient presses it
    again when the page says nothing was found: one short scan can miss every advertisement on
    a loaded machine (seen in a full run under load 7)."""
    cards = [page.locator(s) for s in selectors]
    for _ in range(SCANS):
        async with page.expect_navigation():
            await page.click("#scan")
        if all([await card.count() == 1 for card in cards]):
            return cards
    raise AssertionError(f"not found after {SCANS} scans: {selectors}")


PHONE = {"width": 390, "height": 844}  # CSS pixels of a common phone
TARGET_PX = 48


async def assert_touch_targets(page: Page) -> None:
    """Every visible button, link and field is at least 48 x 48 CSS pixels."""
    small = []
    for target in await page.locator("button, a, select, input:not([type=hidden])").all():
        box = await target.bounding_box()
        if box is not None and (box["height"] < TARGET_PX or box["width"] < TARGET_PX):
            small.append((await target.evaluate("e => e.outerHTML.slice(0, 80)"), box))
    assert small == []


async def test_pair_see_readings_switch_language_and_unit_then_unpair(
    air: VirtualAir, browser: Browser, tmp_path: Path
) -> None:
    meter = make_meter(air, records=4)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        url, server, task = await serve(h.gateway, h.identity)
        try:
            context = await browser.new_context(locale="zh-CN", viewport=PHONE, is_mobile=True)
            page = await context.new_page()
            await page.goto(url)
            assert await page.inner_text("h1") == "家庭网关：您的设备"
            (card,) = await look_until_found(page, f'.discovered[data-address="{meter.address}"]')
            # A picker of the patients the hub is enrolled for, by short name: no typed ids.
            options = await card.locator(".patient option").all_inner_texts()
            assert options == [name for _, name in HUB_PATIENTS]
            await card.locator(".patient").select_option(label="Z. M.")
            await card.locator(".passkey").fill(str(PASSKEY))
            await card.locator(".pair").click()
            await page.wait_for_selector("#message")
            assert await page.inner_text("#message") == "配对成功。已获取读数：4 条。"
            paired = page.locator(".paired")
            assert await paired.count() == 1
            assert await page.locator(".discovered").count() == 0  # no longer "nearby"
            values = await paired.locator(".reading .value").all_inner_texts()
            assert len(values) == 4 and all(v.endswith("mmol/L") for v in values)
            assert "Z. M." in await paired.inner_text()
            assert [p.patient_id for p in h.registry.all()] == ["patient-7"]
            # The model and the serial's last digits, as on the meter's label; no radio address.
            assert (
                await paired.locator(".device-label").inner_text()
                == "Accu-Chek Guide (simulated) …0001"
            )
            assert meter.address.upper() not in (await page.inner_text("body")).upper()
            await assert_touch_targets(page)

            await page.click("#unit-mgdl")
            values_mg = await page.locator(".paired .reading .value").all_inner_texts()
            assert all(v.endswith("mg/dL") for v in values_mg)
            await page.click("#lang-en")
            assert await page.inner_text("h1") == "Home hub: your devices"

            await assert_touch_targets(page)
            # Unpairing asks first; "no" keeps the device.
            await page.locator(".paired .unpair").click()
            assert await page.inner_text("h1") == "Remove this device?"
            assert "Accu-Chek Guide (simulated) …0001" in await page.inner_text("#confirm-ask")
            await assert_touch_targets(page)
            await page.click("#unpair-no")
            assert await page.locator(".paired").count() == 1
            assert len(h.registry.all()) == 1
            await page.click("#lang-zh")
            await page.locator(".paired .unpair").click()
            assert await page.inner_text("h1") == "移除此设备？"
            await assert_touch_targets(page)
            await page.click("#unpair-yes")
            await page.wait_for_selector("#message")
            assert await page.inner_text("#message") == "设备已移除。"
            assert await page.locator(".paired").count() == 0
            assert h.registry.all() == []
            await context.close()
        finally:
            server.should_exit = True
            await task


async def test_bad_input_is_refused_naming_the_field(
    air: VirtualAir, browser: Browser, tmp_path: Path
) -> None:
    meter = make_meter(air)
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        url, server, task = await serve(h.gateway, h.identity)
        try:
            context = await browser.new_context(locale="en-US")
            page = await context.new_page()
            await page.goto(url)
            (card,) = await look_until_found(page, f'.discovered[data-address="{meter.address}"]')
            await card.locator(".passkey").fill("12ab")
            await card.locator(".pair").click()
            await page.wait_for_selector("#message")
            assert "passkey" in await page.inner_text("#message")
            assert h.registry.all() == []
            await context.close()
            # The same over plain HTTP, as the page's own form would post it (its Origin and
            # its form token: tests/gateway/test_page_security.py refuses everything else).
            async with httpx.AsyncClient(base_url=url, headers={"origin": url}) as client:
                token = form_token((await client.get("/")).text)
                bad = await client.post(
                    "/pair", content=token + b"&address=x&passkey=12ab&patient_id=p"
                )
                assert bad.status_code == 400 and "passkey" in bad.text
                # An id the hub is not enrolled for (a hand-made form) is refused by name.
                stranger = await client.post(
                    "/pair", content=token + b"&address=x&passkey=123456&patient_id=someone"
                )
                assert stranger.status_code == 400 and "patient_id" in stranger.text
                huge = await client.post("/pair", content=token + b"&a=" + b"x" * 5000)
                assert huge.status_code == 413
        finally:
            server.should_exit = True
            await task
