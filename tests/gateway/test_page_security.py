"""Issue 14 finding 2: the hub's pairing page against other sites, rebound names, framing and
people on the home network: real HTTP through uvicorn, and Debian's headless Chromium.

A hostile page is served by a second uvicorn on `localhost` (another site than the hub's
127.0.0.1); DNS rebinding is Chromium's own resolver mapping a foreign name to the hub
(`--host-resolver-rules`). The page's login is tested on a loopback bind with the guard the hub
builds for a page bound beyond loopback (`page_server_config`): nothing here listens beyond
loopback.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.async_api import Browser, async_playwright
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from firmware_sims.air import VirtualAir
from gateway.app import page_server_config
from gateway.page import create_page
from gateway.page_guard import CSRF_COOKIE, MAX_FAILURES, SESSION_COOKIE, Guard
from gateway.settings import load_settings
from tests.gateway.sims import PASSKEY, Hub, hub, make_meter
from tests.gateway.test_pairing_page import (
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium_installed,
    form_token,
)
from tests.support.pki import CertificateAuthority
from tests.support.servers import free_port


@pytest.fixture
async def air() -> AsyncIterator[VirtualAir]:
    async with VirtualAir(supervision_timeout_s=0.5) as the_air:
        yield the_air


@pytest.fixture
async def a_hub(air: VirtualAir, tmp_path: Path) -> AsyncIterator[Hub]:
    async with hub(air, tmp_path) as h:
        yield h


class Served:
    """An ASGI app under uvicorn on 127.0.0.1 (optionally over TLS)."""

    def __init__(self, app: Any, **tls: str) -> None:
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", **tls
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Served:
        self.task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(10):
            while not self.server.started:  # noqa: ASYNC110 - uvicorn exposes a flag
                await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await self.task


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if not chromium_installed():
        pytest.fail("Debian's chromium is required (scripts/install-system-deps.sh installs it)")
    async with async_playwright() as p:
        rules = "--host-resolver-rules=MAP rebind.test 127.0.0.1"  # DNS rebinding, simulated
        launched = await p.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, rules], headless=True
        )
        yield launched
        await launched.close()


async def _pair_for_real(client: httpx.AsyncClient, address: str) -> None:
    """Pair the way the page's own forms do (its Origin, its form token)."""
    token = form_token((await client.get("/")).text)
    assert (await client.post("/scan", content=token)).status_code == 303
    paired = await client.post(
        "/pair",
        content=token + f"&address={address}&patient_id=patient-1&passkey={PASSKEY}".encode(),
    )
    assert paired.status_code == 303, paired.text
    # The pairing runs in the background; its page reloads itself until the result shows.
    location = paired.headers["location"]
    async with asyncio.timeout(60):
        shown = (await client.get(location)).text
        while 'id="progress"' in shown:
            await asyncio.sleep(0.2)
            shown = (await client.get(location)).text
    assert 'id="message" role="status"' in shown, shown


def _assert_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp  # no scripts at all (default-src 'none')
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_security_headers_on_every_response(a_hub: Hub) -> None:
    async with (
        Served(create_page(a_hub.gateway, hub=a_hub.identity)) as page,
        httpx.AsyncClient(base_url=page.url) as client,
    ):
        responses = [
            await client.get("/"),
            await client.get("/healthz"),
            await client.get("/prefs?lang=zh-CN"),
            await client.get("/no-such-page"),
            await client.post("/pair", content=b"address=x"),  # refused by the guard
            await client.get("/", headers={"host": "evil.example"}),  # refused by the guard
        ]
    assert [r.status_code for r in responses] == [200, 200, 303, 404, 403, 421]
    for response in responses:
        _assert_headers(response)
    cookie = responses[0].headers["set-cookie"]
    assert cookie.startswith(f"{CSRF_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


async def test_cross_site_posts_are_refused(air: VirtualAir, a_hub: Hub) -> None:
    meter = make_meter(air, records=1)
    await meter.power_on()
    async with Served(create_page(a_hub.gateway, hub=a_hub.identity, scan_s=0.5)) as page:
        async with httpx.AsyncClient(base_url=page.url, headers={"origin": page.url}) as own:
            await _pair_for_real(own, meter.address)
            token = form_token((await own.get("/")).text)
            (device,) = a_hub.registry.all()
            body = token + f"&device_id={device.device_id}".encode()
            cases = {
                "no origin": {"origin": ""},
                "another site": {"origin": "http://attacker.example"},
                "another port": {"origin": "http://127.0.0.1:1"},
                "null origin": {"origin": "null"},
                "foreign referer only": {"origin": "", "referer": "http://attacker.example/x"},
            }
            for name, headers in cases.items():
                refused = await own.post("/unpair", content=body, headers=headers)
                assert refused.status_code == 403, name
            for bad_body in (
                f"device_id={device.device_id}".encode(),  # no token
                b"csrf=" + b"A" * 43 + f"&device_id={device.device_id}".encode(),  # wrong one
            ):
                assert (await own.post("/unpair", content=bad_body)).status_code == 403
        # A token only works with the browser cookie it was issued with.
        async with httpx.AsyncClient(base_url=page.url, headers={"origin": page.url}) as other:
            assert (await other.post("/unpair", content=body)).status_code == 403
            assert a_hub.registry.all() == [device]
            # The control: the page's own form, as sent above, does unpair.
            assert (await _unpair_as_the_page_does(page.url, other)).status_code == 303
    assert a_hub.registry.all() == []


async def _unpair_as_the_page_does(url: str, client: httpx.AsyncClient) -> httpx.Response:
    """Unpair a device the way the page's forms do (unpair, then yes), with this client's own
    token."""
    html = (await client.get("/")).text
    device_id = re.search(r'name="device_id" value="([^"]+)"', html)
    assert device_id is not None
    body = form_token(html) + f"&device_id={device_id.group(1)}".encode()
    asked = await client.post("/unpair", content=body)  # the page asks first
    assert asked.status_code == 200 and 'id="confirm-unpair"' in asked.text
    return await client.post("/unpair", content=body + b"&confirm=yes")


async def test_a_cross_site_page_in_chromium_cannot_pair_or_unpair(
    air: VirtualAir, a_hub: Hub, browser: Browser
) -> None:
    meter = make_meter(air, records=1)
    await meter.power_on()
    async with Served(create_page(a_hub.gateway, hub=a_hub.identity, scan_s=0.5)) as page:
        async with httpx.AsyncClient(base_url=page.url, headers={"origin": page.url}) as own:
            await _pair_for_real(own, meter.address)
        (device,) = a_hub.registry.all()
        hostile_html = f"""<!doctype html><html><body>
<form id="unpair" method="post" action="{page.url}/unpair" target="one">
  <input name="device_id" value="{device.device_id}"></form>
<form id="pair" method="post" action="{page.url}/pair" target="two">
  <input name="address" value="{meter.address}"><input name="patient_id" value="attacker">
</form>
<iframe name="one"></iframe><iframe name="two"></iframe><iframe id="framed" src="{page.url}/">
</iframe>
<script>document.getElementById('unpair').submit(); document.getElementById('pair').submit();
</script></body></html>"""

        async def hostile(request: object) -> HTMLResponse:
            return HTMLResponse(hostile_html)

        attacker = Starlette(routes=[Route("/", hostile)])
        async with Served(attacker) as evil:
            context = await browser.new_context()
            tab = await context.new_page()
            # The victim first opens the hub's page: their browser now holds its cookie.
            await tab.goto(page.url)
            refused: list[str] = []
            answers: dict[str, int] = {}
            tab.on("console", lambda m: refused.append(m.text))
            tab.on(
                "response",
                lambda r: answers.__setitem__(f"{r.request.method} {r.url}", r.status),
            )
            await tab.goto(evil.url.replace("127.0.0.1", "localhost"))  # another site
            async with asyncio.timeout(10):
                while len([k for k in answers if k.startswith("POST")]) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await tab.wait_for_timeout(300)  # the framed page loads (or is refused)
            await context.close()
    assert a_hub.registry.all() == [device]  # still paired, to the same patient
    # Both forms reached the hub and were refused there (the browser sent its cookie).
    assert answers[f"POST {page.url}/unpair"] == 403, answers
    assert answers[f"POST {page.url}/pair"] == 403, answers
    assert any("frame-ancestors" in text for text in refused), refused  # framing blocked


async def test_a_foreign_host_header_is_refused(a_hub: Hub, browser: Browser) -> None:
    guard = Guard(pin=None, allowed_hosts=frozenset({"hub.local"}))
    async with Served(create_page(a_hub.gateway, hub=a_hub.identity, guard=guard)) as page:
        async with httpx.AsyncClient(base_url=page.url) as client:
            for host, status in (
                (f"127.0.0.1:{page.port}", 200),
                (f"localhost:{page.port}", 200),
                (f"[::1]:{page.port}", 200),
                (f"192.168.1.20:{page.port}", 200),  # the hub's LAN address typed by hand
                (f"hub.local:{page.port}", 200),  # configured
                (f"rebind.test:{page.port}", 421),
                ("", 421),
            ):
                got = await client.get("/", headers={"host": host})
                assert got.status_code == status, host
        # In Chromium, a name rebound to the hub's address reaches it, and is turned away.
        context = await browser.new_context()
        tab = await context.new_page()
        response = await tab.goto(f"http://rebind.test:{page.port}/")
        assert response is not None and response.status == 421
        assert "unknown host name" in await tab.inner_text("body")
        await context.close()


async def test_the_page_cannot_be_framed(a_hub: Hub, browser: Browser) -> None:
    async with Served(create_page(a_hub.gateway, hub=a_hub.identity)) as page:
        framing = f'<!doctype html><iframe id="f" src="{page.url}/"></iframe>'

        async def frame_it(request: object) -> HTMLResponse:
            return HTMLResponse(framing)

        async with Served(Starlette(routes=[Route("/", frame_it)])) as other:
            context = await browser.new_context()
            tab = await context.new_page()
            messages: list[str] = []
            tab.on("console", lambda m: messages.append(m.text))
            await tab.goto(other.url)
            await tab.wait_for_timeout(500)
            inner = await tab.frames[1].content()
            await context.close()
    assert "Home hub" not in inner
    assert any("frame-ancestors 'none'" in m for m in messages), messages


def _beyond_loopback_settings(tmp_path: Path, **extra: object) -> Any:
    return load_settings(
        gateway_id="gw-page", data_dir=tmp_path / "hub", page_host="0.0.0.0", **extra
    )


async def test_beyond_loopback_the_page_needs_the_pin(
    a_hub: Hub, tmp_path: Path, browser: Browser
) -> None:
    shown: list[str] = []
    settings = _beyond_loopback_settings(tmp_path)
    config = page_server_config(settings, a_hub.gateway, show=shown.append)
    (line,) = shown
    pin = re.sub(r"\D", "", line.rsplit(":", 1)[1])
    assert len(pin) == 8 and pin not in settings.page_pin_path.read_text()  # kept hashed
    page_server_config(settings, a_hub.gateway, show=shown.append)
    assert len(shown) == 1  # shown at the first start only
    async with Served(config.app) as page:
        async with httpx.AsyncClient(base_url=page.url, headers={"origin": page.url}) as client:
            first = await client.get("/")
            assert first.status_code == 303 and first.headers["location"] == "/login"
            login = await client.get("/login")
            token = form_token(login.text)
            assert (await client.post("/scan", content=token)).status_code == 401
            wrong = await client.post("/login", content=token + b"&pin=00000000")
            assert wrong.status_code == 401 and "not right" in wrong.text
            right = await client.post("/login", content=token + f"&pin={pin}".encode())
            assert right.status_code == 303
            cookie = right.headers["set-cookie"]
            assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            home = await client.get("/")
            assert home.status_code == 200 and "Home hub: your devices" in home.text
        # Guessing is locked out, even for the right PIN afterwards.
        async with httpx.AsyncClient(base_url=page.url, headers={"origin": page.url}) as guesser:
            token = form_token((await guesser.get("/login")).text)
            for _ in range(MAX_FAILURES):
                await guesser.post("/login", content=token + b"&pin=11111111")
            locked = await guesser.post("/login", content=token + f"&pin={pin}".encode())
            assert locked.status_code == 429 and "wait" in locked.text
    # In Chromium, as the patient does it, on a fresh guard (the lockout above is per address).
    config = page_server_config(settings, a_hub.gateway, show=shown.append)
    async with Served(config.app) as page:
        context = await browser.new_context(locale="zh-CN")
        tab = await context.new_page()
        await tab.goto(page.url)
        assert await tab.inner_text("h1") == "家庭网关：请输入 PIN 码"
        await tab.fill("#pin", pin)
        await tab.click("#login")
        assert await tab.inner_text("h1") == "家庭网关：您的设备"
        await context.close()


async def test_warning_when_bound_beyond_loopback_without_tls(
    a_hub: Hub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ca = CertificateAuthority(tmp_path, "hub-ca")
    issued = ca.issue("hub.local", server_names=("127.0.0.1", "hub.local"))
    shown: list[str] = []
    with caplog.at_level(logging.WARNING):
        page_server_config(_beyond_loopback_settings(tmp_path), a_hub.gateway, show=shown.append)
        assert "without TLS" in caplog.text
        caplog.clear()
        loopback = load_settings(gateway_id="gw-page", data_dir=tmp_path / "lo")
        page_server_config(loopback, a_hub.gateway)
        assert not loopback.page_pin_path.exists()  # no PIN on loopback
        with_tls = _beyond_loopback_settings(
            tmp_path, page_tls_cert=issued.cert, page_tls_key=issued.key
        )
        config = page_server_config(with_tls, a_hub.gateway, show=shown.append)
    assert "without TLS" not in caplog.text
    assert config.ssl_certfile == str(issued.cert)
    pin = re.sub(r"\D", "", shown[0].rsplit(":", 1)[1])
    # Over TLS both cookies are Secure.
    async with Served(
        config.app, ssl_certfile=str(issued.cert), ssl_keyfile=str(issued.key)
    ) as page:
        tls = ssl.create_default_context(cafile=str(ca.cert_path))
        async with httpx.AsyncClient(
            base_url=page.url, headers={"origin": page.url}, verify=tls
        ) as client:
            login = await client.get("/login")
            assert "Secure" in login.headers["set-cookie"]
            got = await client.post(
                "/login", content=form_token(login.text) + f"&pin={pin}".encode()
            )
            assert got.status_code == 303
            assert got.headers["set-cookie"].startswith(SESSION_COOKIE)
            assert "Secure" in got.headers["set-cookie"]
