"""The pairing page says what is happening while it pairs and back-fills, in headless Chromium
on a phone-sized screen in both languages: the page shows the step ("reading from the device:
N readings received so far") and reloads itself each second until the result, with no script
(the page's CSP forbids any); a failed pairing reads as an error, not as good news."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import Error as PlaywrightError

from firmware_sims.air import VirtualAir
from firmware_sims.faults import Faults
from gateway.i18n import Locale, tr
from tests.gateway.sims import PASSKEY, hub, make_meter
from tests.gateway.test_pairing_page import (
    PHONE,
    assert_touch_targets,
    browser,
    look_until_found,
    serve,
)

__all__ = ["browser"]

RECORDS = 30
SLOW_S = 0.15  # the simulated meter waits this long before each record: ~4.5 s of transfer


ZONE = "Asia/Shanghai"
READING = "Reading from the device: %(count)s readings received so far…"


def written(at: datetime, locale: Locale) -> str:
    """`at` at UTC+8 as each language writes it (spelled out here, not through Babel)."""
    here = at.astimezone(timezone(timedelta(hours=8)))
    if locale == "zh-CN":
        return f"{here.year}年{here.month}月{here.day}日 {here:%H:%M}"
    hour = here.hour % 12 or 12
    return f"{here:%b} {here.day}, {here.year} {hour}:{here:%M}\u202f{here:%p}"


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


# One page's state read at once (Playwright evaluates through the DevTools protocol, which the
# page's CSP does not govern): separate reads could straddle a reload.
READ_STATE = """() => {
    if (document.querySelector('#message')) return null;
    const p = document.querySelector('#progress');
    if (!p) return [];
    return [p.dataset.step, p.dataset.received, document.querySelector('#progress-step').innerText];
}"""


async def steps_until_done(page: Page) -> list[tuple[str, int, str]]:
    """(step, received, text) of each progress page seen, polled until the result shows."""
    shown: list[tuple[str, int, str]] = []
    deadline = asyncio.get_running_loop().time() + 120
    while asyncio.get_running_loop().time() < deadline:
        try:
            state = await page.evaluate(READ_STATE)
        except PlaywrightError:  # the page was reloading; read it again
            continue
        if state is None:
            return shown
        if state:
            step, received, line = state
            if not shown or shown[-1] != (step, int(received), line):
                shown.append((step, int(received), line))
        await asyncio.sleep(0.2)
    raise AssertionError(f"no result within two minutes; progress seen: {shown}")


async def press_pair(context: BrowserContext, url: str, address: str) -> Page:
    """A phone's page that found the meter, typed its passkey and pressed Pair."""
    page = await context.new_page()
    await page.goto(url)
    (card,) = await look_until_found(page, f'.discovered[data-address="{address}"]')
    await card.locator(".passkey").fill(str(PASSKEY))
    await card.locator(".pair").click()
    return page


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_progress_is_shown_while_a_meter_back_fills(
    air: VirtualAir, browser: Browser, tmp_path: Path, locale: Locale
) -> None:
    meter = make_meter(air, records=RECORDS, faults=Faults(slow_response_s=SLOW_S))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        url, server, task = await serve(h.gateway, h.identity, timezone=ZONE)
        try:
            context = await browser.new_context(locale=locale, viewport=PHONE, is_mobile=True)
            page = await press_pair(context, url, meter.address)
            assert await page.locator("#progress").count() == 1  # at once, not after the pairing
            refresh = page.locator('meta[http-equiv="refresh"]')
            assert await refresh.get_attribute("content") == "1"
            await assert_touch_targets(page)
            shown = await steps_until_done(page)
            reading = [(n, line) for step, n, line in shown if step == "reading"]
            # The count is seen growing, mid-transfer, in the patient's language.
            assert reading, shown
            assert any(0 < n < RECORDS for n, _ in reading), shown
            for n, line in reading:
                assert line == tr(locale, READING, count=n)
                assert line.startswith("正在读取设备数据" if locale == "zh-CN" else "Reading from")
            counts = [n for n, _ in reading]
            assert counts == sorted(counts)
            message = page.locator("#message")
            assert await message.inner_text() == tr(
                locale, "Paired. Readings fetched: %(stored)s.", stored=RECORDS
            )
            assert await message.get_attribute("class") == "msg"
            assert await message.get_attribute("role") == "status"
            assert await page.locator('meta[http-equiv="refresh"]').count() == 0
            assert await page.locator(".paired").count() == 1
            # Times in the hub's zone (UTC+8), written the patient's way; never UTC.
            (device,) = h.registry.all()
            assert device.last_sync_at is not None
            shown_sync = await page.inner_text(".paired .last-sync")
            assert shown_sync == written(device.last_sync_at, locale)
            shown_at = await page.locator(".paired .reading .at").all_inner_texts()
            stored = h.outbox.latest(device.device_id, 5)
            assert shown_at == [written(r.measured_at, locale) for r in stored]
            body = await page.inner_text("body")
            assert "UTC" not in body
            if locale == "zh-CN":  # no English fragment but the device's own names and units
                own = [
                    device.device.model,
                    device.device.manufacturer,
                    "English",
                    "mmol/L",
                    "mg/dL",
                ]
                for name in own:
                    body = body.replace(name or "", "")
                assert re.findall("[A-Za-z]{2,}", body) == [], body
            await assert_touch_targets(page)
            await context.close()
        finally:
            server.should_exit = True
            await task


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_a_refused_pairing_looks_like_an_error(
    air: VirtualAir, browser: Browser, tmp_path: Path, locale: Locale
) -> None:
    meter = make_meter(air, records=2, faults=Faults(refuse_pairing=True))
    await meter.power_on()
    async with hub(air, tmp_path) as h:
        url, server, task = await serve(h.gateway, h.identity)
        try:
            context = await browser.new_context(locale=locale, viewport=PHONE, is_mobile=True)
            page = await press_pair(context, url, meter.address)
            await steps_until_done(page)
            message = page.locator("#message")
            assert await message.inner_text() == tr(
                locale, "The device refused pairing. Check the passkey and try again."
            )
            assert await message.get_attribute("class") == "msg err"
            assert await message.get_attribute("role") == "alert"
            # Drawn as an error: a red border, unlike the green of a success.
            border = await message.evaluate("e => getComputedStyle(e).borderTopColor")
            assert border == "rgb(179, 38, 30)"
            assert await page.locator(".paired").count() == 0
            assert h.registry.all() == []
            await assert_touch_targets(page)
            await context.close()
        finally:
            server.should_exit = True
            await task
