"""The pairing page's patient picker in headless Chromium: a hub enrolled for a household
offers its patients by short name (never a free-text id), and a cuff two people share maps its
user 2 to the second patient; a reading of a user nobody was assigned to is quarantined on the
hub instead of being given to the wrong patient."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser

from firmware_sims.air import VirtualAir
from tests.gateway.sims import HUB_PATIENTS, PASSKEY, hub, make_cuff, utcnow
from tests.gateway.test_pairing_page import browser, look_until_found, serve

__all__ = ["browser"]


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


async def test_a_household_cuff_maps_each_user_to_a_patient(
    air: VirtualAir, browser: Browser, tmp_path: Path
) -> None:
    cuff = make_cuff(air)
    alone = make_cuff(air, serial="BP00000002", address="F2:00:00:00:00:02")
    start = utcnow() - timedelta(days=1)
    for i, user in enumerate((1, 2, 1)):
        stamp = (start + timedelta(hours=i)).replace(tzinfo=None, microsecond=0)
        for device in (cuff, alone):
            device.store(device.encode(systolic_mmhg=120 + i, diastolic_mmhg=80,
                                       pulse_per_min=70, user_id=user, body_movement=False,
                                       irregular_pulse=False, time_stamp=stamp))  # fmt: skip
    await cuff.power_on()
    await alone.power_on()
    async with hub(air, tmp_path) as h:
        url, server, task = await serve(h.gateway, h.identity)
        try:
            context = await browser.new_context(locale="en-US")
            page = await context.new_page()
            await page.goto(url)
            hub_names = await page.locator(".hub-patient").all_inner_texts()
            assert hub_names == [name for _, name in HUB_PATIENTS]
            card, other = await look_until_found(
                page,
                f'.discovered[data-address="{cuff.address}"]',
                f'.discovered[data-address="{alone.address}"]',
            )
            assert await card.locator("input.patient").count() == 0  # no free-text id
            await card.locator(".patient").select_option(label="W. L.")
            await card.locator(".user-2").select_option(label="L. F.")
            await card.locator(".passkey").fill(str(PASSKEY))
            await card.locator(".pair").click()
            await page.wait_for_selector("#message")
            paired_text = await page.locator(".paired").inner_text()
            assert "W. L." in paired_text and "User 2 of the cuff: L. F." in paired_text
            # The other cuff: user 2 left to nobody.
            await other.locator(".patient").select_option(label="Z. M.")
            await other.locator(".passkey").fill(str(PASSKEY))
            await other.locator(".pair").click()
            await page.wait_for_selector("#message")
            assert await page.locator(".paired").count() == 2
            await context.close()
        finally:
            server.should_exit = True
            await task
        shared, single = sorted(h.registry.all(), key=lambda p: p.address)
        assert shared.user_patients == ((1, "patient-1"), (2, "patient-8"))
        assert single.user_patients == ((1, "patient-7"),)

        def stored(device_id: str) -> list[tuple[str, float]]:
            readings = h.outbox.latest(device_id, 10)
            return sorted((r.patient_id, float(r.values["systolic_mmhg"])) for r in readings)

        assert stored(shared.device_id) == [
            ("patient-1", 120.0),
            ("patient-1", 122.0),
            ("patient-8", 121.0),
        ]
        assert stored(single.device_id) == [("patient-7", 120.0), ("patient-7", 122.0)]
        (kept,) = h.outbox.quarantined(single.device_id)  # user 2: nobody's, kept on the hub
        assert "user 2 of this cuff is not assigned to a patient" in kept.reason
