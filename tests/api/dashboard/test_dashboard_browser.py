"""The dashboard in Debian's headless Chromium, served by the API under real uvicorn on
PostgreSQL: sign in, open a patient, count the charts' points, acknowledge an alert; in both
languages; consent decides each section and every read lands in the audit trail.

Screenshots are kept under `test-artifacts/dashboard/` (gitignored)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, sync_playwright

from api.app import create_app
from api.dashboard.routes import SCOPES
from api.record_queries import alert_by_id
from api.tokens import Actor
from careteam.tables import audit_log
from tests.alerts.delivery.receiver import UvicornThread
from tests.api.dashboard.seed import (
    HUB_OFFLINE,
    HUB_OFFLINE_SINCE,
    HUB_ONLINE,
    PATIENT,
    DashboardRecord,
    seed,
)
from tests.api.support import settings, token

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parents[3] / "test-artifacts" / "dashboard"
DEV_CODE = "dev-code-for-the-dashboard-test"


@pytest.fixture(scope="module")
def seeded(record_engine: sa.Engine) -> DashboardRecord:
    return seed(record_engine)


@pytest.fixture(scope="module")
def base_url(record_engine: sa.Engine, seeded: DashboardRecord) -> Iterator[str]:
    app = create_app(
        settings(environment="development", dashboard_dev_code=DEV_CODE, rate_burst=10_000),
        record_engine,
    )
    server = UvicornThread(app)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required (scripts/install-system-deps.sh installs it)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


def _page(browser: Browser, locale: str) -> Page:
    context = browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, device_scale_factor=1
    )
    return context.new_page()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _audit(engine: sa.Engine, actor_id: str) -> list[sa.Row[tuple[object, ...]]]:
    c = audit_log.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(c.action, c.data_kind, c.outcome, c.entity_id)
                .where(c.actor_id == actor_id)
                .order_by(c.seq)
            )
        )


def test_sign_in_open_patient_charts_and_acknowledge(
    browser: Browser, base_url: str, seeded: DashboardRecord, record_engine: sa.Engine
) -> None:
    page = _page(browser, "en-GB")
    page.goto(f"{base_url}/dashboard/")
    assert page.locator("h1").inner_text() == "Sign in"
    page.fill("#token", token(Actor.MEMBER, seeded.clinic_member, SCOPES))
    page.click("form[action='/dashboard/login'] button")
    row = page.locator(f"tr.patient-row[data-patient='{PATIENT}']")
    assert row.count() == 1
    assert "1 high" in row.inner_text()
    # Each enrolled hub, online or not, from what ingest last heard (hub_status), local time.
    online = row.locator(f".hub[data-gateway='{HUB_ONLINE}'] .badge")
    offline = row.locator(f".hub[data-gateway='{HUB_OFFLINE}']")
    assert online.inner_text() == "online"
    assert "hub-online" in (online.get_attribute("class") or "")
    assert offline.locator(".badge").inner_text() == "offline"
    # Shown in the patient's zone (Asia/Shanghai, UTC+8), as Babel writes it for English.
    since = HUB_OFFLINE_SINCE.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{since:%b} {since.day}, {since.year}, {since:%-I:%M}" in offline.inner_text()
    _shot(page, "patients-en")

    row.locator("a").click()
    page.wait_for_selector("#bp svg")
    assert page.locator("#bp svg circle.pt.sys").count() == seeded.bp_count
    assert page.locator("#bp svg circle.pt.dia").count() == seeded.bp_count
    assert page.locator("#bp svg line.thr").count() == 2
    assert page.locator("#glucose svg circle.pt").count() == seeded.glucose_count
    assert page.locator("#glucose svg polygon.band").count() == 2
    assert page.locator("#glucose svg path.median").count() == 1
    shares = page.locator("#glucose table.shares").inner_text()
    assert f"\t{seeded.glucose_count}" in shares or f" {seeded.glucose_count}" in shares
    assert "Asia/Shanghai" in page.locator("main").inner_text()
    assert page.locator("#devices tr.device").count() == 2
    assert page.locator("#consent tr.grant").count() == 2
    _shot(page, "patient-en")
    # The README's picture (docs/img/dashboard.png is a copy of this one): the first screen.
    page.set_viewport_size({"width": 1280, "height": 1480})
    page.screenshot(path=str(ARTIFACTS / "readme-dashboard.png"))
    page.set_viewport_size({"width": 1280, "height": 900})

    alert = page.locator(f"li[data-alert='{seeded.hypo_alert}']")
    alert.locator("form[action$='/acknowledge'] input[name='note']").fill("Called the patient")
    alert.locator("button.ack").click()
    page.wait_for_url(f"**/dashboard/patients/{PATIENT}*")
    alert = page.locator(f"li[data-alert='{seeded.hypo_alert}']")
    assert "acknowledged" in alert.locator(".state").inner_text()
    assert alert.locator("button.ack").count() == 0
    _shot(page, "acknowledged-en")

    with record_engine.connect() as conn:
        stored = alert_by_id(conn, seeded.hypo_alert)
    assert stored is not None
    assert stored.acknowledged_by == seeded.clinic_member
    entries = _audit(record_engine, seeded.clinic_member)
    assert ("alert.acknowledge", "alerts", "success", seeded.hypo_alert) in entries
    assert ("data.read", "blood_pressure", "success", "readings:blood_pressure") in entries
    assert ("audit.view", None, "success", "audit") in entries
    # The audit trail on the page shows the reads it recorded.
    assert "alert.acknowledge" in page.locator("#audit").inner_text()
    page.context.close()


def test_chinese_mg_dl_and_a_kind_without_consent(
    browser: Browser, base_url: str, seeded: DashboardRecord, record_engine: sa.Engine
) -> None:
    page = _page(browser, "zh-CN")
    page.goto(f"{base_url}/dashboard/login")
    assert page.locator("h1").inner_text() == "登录"
    page.fill("#member_id", seeded.practice_member)
    page.fill("#code", DEV_CODE)
    page.click("form[action='/dashboard/dev-login'] button")
    assert page.locator("h1").inner_text() == "患者"
    row = page.locator(f"tr.patient-row[data-patient='{PATIENT}']")
    assert row.locator(f".hub[data-gateway='{HUB_ONLINE}'] .badge").inner_text() == "在线"
    assert row.locator(f".hub[data-gateway='{HUB_OFFLINE}'] .badge").inner_text() == "离线"
    page.select_option("select[name='unit']", "mg/dL")
    page.click("form.prefs button")
    page.locator(f"tr.patient-row[data-patient='{PATIENT}'] a").click()
    page.wait_for_selector("#glucose svg")
    assert page.locator("#bp .consent").inner_text() == "患者未向您的团队授权此类数据。"
    assert page.locator("#bp svg").count() == 0
    assert page.locator("#glucose svg circle.pt").count() == seeded.glucose_count
    legend = page.locator("#glucose .legend").inner_text()
    assert "70-180 mg/dL" in legend
    assert "血糖" in page.locator("#glucose h2").inner_text()
    _shot(page, "patient-zh-mgdl")
    entries = _audit(record_engine, seeded.practice_member)
    assert ("data.read", "blood_pressure", "denied", "readings:blood_pressure") in entries
    page.context.close()


def test_forms_from_another_site_and_bad_sign_ins_are_refused(
    browser: Browser, base_url: str, seeded: DashboardRecord
) -> None:
    page = _page(browser, "en-US")
    page.goto(f"{base_url}/dashboard/login")
    page.fill("#member_id", seeded.practice_member)
    page.fill("#code", "not-the-code")
    page.click("form[action='/dashboard/dev-login'] button")
    assert page.locator(".error").inner_text() == "That code is not right."
    page.fill("#token", "not.a.token")
    page.click("form[action='/dashboard/login'] button")
    assert page.locator(".error").inner_text() == "That token is not valid."
    page.context.close()
