"""The local pairing page: a small server-rendered FastAPI app on the hub (loopback by default).

No scripts, no CDN, no web fonts: plain HTML forms with inline CSS, so it works without
internet. The patient looks for devices, pairs one (typing the passkey the device shows), sees
paired devices with their last readings and last sync, and unpairs. `gateway.page_guard` stands
in front: Host, Origin and CSRF-token checks, security headers, and the hub PIN when the page is
reachable beyond loopback. Language and glucose unit come from `gateway.i18n` (Accept-Language,
with switches kept in cookies); every string goes through its gettext catalogues, times are
shown in the hub's zone. A pairing runs in the background: the page that shows its steps
(`gateway.progress`) reloads itself each second (meta refresh) until the result. Forms are parsed
with the standard library (bodies over 4 KiB are refused with 413), and bad input is answered
with a 400 page naming the field.

A hub that has no identity yet serves the same app without a `Gateway` (enrol-only mode, behind
the same guard): only the enrolment-code form, and once a code is redeemed, a page that says the
hub is starting and reloads until the hub's composition root swaps in the full page.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from devices.reading import Kind, Reading
from devices.special import Special
from devices.units import mmol_l_to_mg_dl
from gateway.enrolment import HubIdentity, Identity
from gateway.errors import EnrolmentError, InvalidInputError, UnknownDeviceError
from gateway.i18n import (
    KIND_NAMES,
    LOCALES,
    N_,
    GlucoseUnit,
    Locale,
    choose_locale,
    choose_unit,
    tr,
    translations,
)
from gateway.page_guard import SESSION_COOKIE, SESSION_S, Guard, GuardMiddleware
from gateway.progress import Step, Tracker
from gateway.registry import PairedDevice
from gateway.service import Gateway

log = logging.getLogger(__name__)

MAX_FORM_BYTES: Final = 4096
SCAN_S: Final = 3.0
KEPT_PAIRINGS: Final = 16  # pairings whose progress or result the page can still show
REFRESH_S: Final = 1  # how often a page showing a pairing in progress reloads itself
_SPECIAL_LABEL: Final = {Special.POSITIVE_INFINITY: "HI", Special.NEGATIVE_INFINITY: "LO"}

# Messages the page composes in code (the templates hold the rest), as gettext message ids.
PAIRING_GONE: Final = N_("That pairing is no longer shown. Your devices are listed below.")
PAIRING_WITH: Final = N_("Pairing with %(device)s")
ELAPSED: Final = N_("%(seconds)s s so far")
HUB_FAULT: Final = N_("Pairing stopped because of a problem on the hub. Try again.")
BAD_INPUT: Final = N_("Please check %(field)s: %(reason)s")
STEP_LINES: Final[dict[Step, str]] = {
    Step.LOOKING: N_("Looking for the device…"),
    Step.CONNECTING: N_("Connecting to the device…"),
    Step.BONDING: N_("Pairing with the device (checking the passkey)…"),
    Step.READING: N_("Reading from the device: %(count)s readings received so far…"),
    Step.SAVING: N_("Saving %(count)s readings on the hub…"),
    Step.DONE: N_("Saving %(count)s readings on the hub…"),  # not shown: done shows the result
}
RESULTS: Final[dict[str, str]] = {
    "complete": N_("Paired. Readings fetched: %(stored)s."),
    "nothing_new": N_("Paired. The device had no new readings."),
    "pairing_refused": N_("The device refused pairing. Check the passkey and try again."),
    "not_bonded": N_("The device forgot this hub. Put it in pairing mode and pair again."),
}
RESULT_OTHER: Final = N_("Pairing did not finish (%(outcome)s). Try again.")
# How a session ended, in words (the page's "Status", and a failed pairing's reason).
OUTCOME_NAMES: Final[dict[str, str]] = {
    "complete": N_("all readings fetched"),
    "nothing_new": N_("nothing new"),
    "pairing_refused": N_("pairing refused"),
    "not_bonded": N_("the device forgot this hub"),
    "identity_mismatch": N_("a different device answered"),
    "disconnected": N_("the connection was lost"),
    "timeout": N_("the device stopped answering"),
    "device_error": N_("the device reported an error"),
    "unsupported": N_("this device is not supported"),
    "unreachable": N_("the device could not be reached"),
    "outbox_full": N_("the hub's storage is full"),
}


def outcome_name(locale: Locale, outcome: str) -> str:
    """A session outcome in the patient's words (unknown ones as they are)."""
    return tr(locale, OUTCOME_NAMES[outcome]) if outcome in OUTCOME_NAMES else outcome


@cache
def _environment(locale: Locale) -> Environment:
    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(locale), newstyle=False)  # type: ignore[attr-defined]
    return env


def _page(locale: Locale, template: str, **context: object) -> str:
    """A page as HTML in `locale` (its strings through the gettext catalogue)."""
    return str(_environment(locale).get_template(template).render(locale=locale, **context))


def bad_input(locale: Locale, field: str, reason: str) -> str:
    """The message naming a field that was wrong and why (the page's own reasons translated)."""
    return tr(locale, BAD_INPUT, field=field, reason=tr(locale, reason))


def _number(value: float | Special, digits: int) -> str:
    if isinstance(value, Special):
        return _SPECIAL_LABEL.get(value, value.value)
    return f"{value:.{digits}f}"


def describe(reading: Reading, unit: GlucoseUnit) -> str:
    """A reading as the patient reads it, in their glucose unit."""
    values = reading.values
    if reading.kind in (Kind.GLUCOSE, Kind.KETONE, Kind.CGM_GLUCOSE):
        value = values.get("glucose_mmol_l", values.get("ketone_mmol_l", Special.NAN))
        glucose = reading.kind in (Kind.GLUCOSE, Kind.CGM_GLUCOSE)
        if glucose and unit == "mg/dL" and not isinstance(value, Special):
            return f"{mmol_l_to_mg_dl(value):.0f} mg/dL"
        return f"{_number(value, 1)} mmol/L"
    if reading.kind is Kind.BLOOD_PRESSURE:
        text = f"{_number(values['systolic_mmhg'], 0)}/{_number(values['diastolic_mmhg'], 0)} mmHg"
        pulse = values.get("pulse_per_min")
        return text if pulse is None else f"{text}, {_number(pulse, 0)} /min"
    shown = _WEARABLE.get(reading.kind)
    if shown is not None and shown[0] in values:
        name, unit_text, digits = shown
        text = f"{_number(values[name], digits)} {unit_text}"
        pulse = values.get("pulse_per_min") if reading.kind is Kind.SPO2 else None
        return text if pulse is None else f"{text}, {_number(pulse, 0)} /min"
    return ", ".join(f"{k} {_number(v, 1)}" for k, v in values.items())


# Per wearable kind: the value the page shows, its unit and decimals (a minute's mean for the
# streams).
_WEARABLE: dict[Kind, tuple[str, str, int]] = {
    Kind.HEART_RATE: ("heart_rate_per_min", "/min", 0),
    Kind.SPO2: ("spo2_pct", "% SpO2", 0),
    Kind.BODY_TEMPERATURE: ("body_temperature_c", "°C", 1),
    Kind.BODY_WEIGHT: ("body_weight_kg", "kg", 1),
}


def local_time(at: datetime, zone: str, locale: Locale) -> str:
    """`at` in the hub's time zone as the patient's language writes a date and a time of day
    (no seconds, no zone name): "Dec 6, 2026 9:31 PM", "2026年12月6日 21:31"."""
    here = at.astimezone(ZoneInfo(zone))
    babel_locale = locale.replace("-", "_")
    day = format_date(here, "medium", locale=babel_locale)
    return f"{day} {format_time(here, 'short', locale=babel_locale)}"


def device_label(model: str | None, name: str | None, serial: str | None) -> str:
    """How a person recognises a device: its model (else its advertised name) and the last four
    characters of its serial, as printed on its label; never the radio address."""
    shown = model or name or ""
    return f"{shown} …{serial[-4:]}" if serial else shown


def users_of(kind: str | None, patient_id: str, user_2: str) -> dict[int, str] | None:
    """The user index -> patient map of a cuff (None for other devices)."""
    if kind != "blood_pressure":
        return None
    return {1: patient_id, 2: user_2} if user_2 else {1: patient_id}


async def run_pairing(
    gateway: Gateway,
    tracker: Tracker,
    address: str,
    patient_id: str,
    *,
    passkey: int | None,
    user_patients: Mapping[int, str] | None,
) -> None:
    """Pair in the background, telling `tracker` each step and how it ended; never raises
    (the page shows a hub fault as an error instead of reloading forever)."""
    try:
        result = await gateway.pair(
            address,
            patient_id,
            passkey=passkey,
            user_patients=user_patients,
            on_step=tracker.report,
        )
    except InvalidInputError as exc:
        tracker.fail(exc.field, exc.reason)
    except Exception as exc:  # a hub fault must end the progress page, not leave it spinning
        log.exception("pairing stopped by a hub fault")
        tracker.fail("hub", type(exc).__name__)
    else:
        tracker.finish(result.outcome, result.stored)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInputError("form", f"larger than {MAX_FORM_BYTES} bytes")
    try:
        parsed = parse_qs(body.decode("utf-8"), strict_parsing=False, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError("form", N_("not a valid form")) from exc
    return {k: v[0].strip() for k, v in parsed.items() if v}


def create_page(
    gateway: Gateway | None,
    *,
    default_locale: Locale = "en",
    timezone: str = "UTC",
    scan_s: float = SCAN_S,
    guard: Guard | None = None,
    hub: HubIdentity | None = None,
    on_enrolled: Callable[[Identity], None] | None = None,
) -> FastAPI:
    """The pairing page's ASGI app, bound to `gateway` (`scan_s`: how long "look" scans;
    times are shown in `timezone`, the hub's IANA zone).

    Devices are assigned to the patients the hub is enrolled for (`hub`), picked by short name
    (never a typed id); a cuff two people share maps its user 2 to the other patient. An
    enrolment code typed here adds the code's patients. Without `hub` nothing can be paired.
    Without `gateway` (a hub not enrolled yet) the page offers only the enrolment form;
    `on_enrolled` is told of each identity a code gave.

    `guard` decides who may drive it (`gateway.page_guard`); by default loopback rules: no
    login, but Host, Origin, CSRF token and security headers all checked.
    """
    app = FastAPI(title="homevitals hub", docs_url=None, redoc_url=None, openapi_url=None)
    # Pairings the page started: id -> (tracker, advertised name, kind), oldest first.
    pairings: dict[str, tuple[Tracker, str, str]] = {}
    running: set[asyncio.Task[None]] = set()  # held so the tasks are not collected
    the_guard = guard or Guard(pin=None)
    app.add_middleware(GuardMiddleware, guard=the_guard)

    def prefs(request: Request) -> tuple[Locale, GlucoseUnit]:
        header = request.headers.get("accept-language") or default_locale
        return (
            choose_locale(header, request.cookies.get("hv_lang")),
            choose_unit(header, request.cookies.get("hv_unit")),
        )

    def pairing_state(
        locale: Locale, pairing_id: str
    ) -> tuple[dict[str, object] | None, str, bool]:
        """(progress to show while running, else None; the message; whether it is an error)."""
        entry = pairings.get(pairing_id)
        if entry is None:
            return None, tr(locale, PAIRING_GONE), False
        tracker, name, kind = entry
        state = tracker.progress
        if not tracker.done:
            device = name or (tr(locale, KIND_NAMES[kind]) if kind in KIND_NAMES else "")
            shown: dict[str, object] = {
                "title": tr(locale, PAIRING_WITH, device=device),
                "step": state.step.value,
                "line": tr(locale, STEP_LINES[state.step], count=state.received),
                "received": state.received,
                "elapsed": tr(locale, ELAPSED, seconds=tracker.elapsed_s(time.monotonic())),
            }
            return shown, "", False
        if state.error is not None:
            field, reason = state.error
            if field == "hub":
                return None, tr(locale, HUB_FAULT), True
            return None, bad_input(locale, field, reason), True
        template = RESULTS.get(state.outcome or "", RESULT_OTHER)
        shown_outcome = outcome_name(locale, state.outcome or "")
        message = tr(locale, template, stored=state.stored, outcome=shown_outcome)
        return None, message, not tracker.succeeded

    def render(request: Request, status: int = 200, message: str | None = None) -> HTMLResponse:
        locale, unit = prefs(request)
        if gateway is None:
            return enrol_only(request, locale, status, message)
        error = status >= 400
        progress = None
        pairing_id = request.query_params.get("pairing")
        if message is None and pairing_id is not None:
            progress, message, error = pairing_state(locale, pairing_id)
        devices = gateway.devices()
        paired = [
            {
                "device": p,
                "kind": tr(locale, KIND_NAMES[p.kind]),
                "label": device_label(p.device.model, p.name, p.device.serial),
                "readings": [
                    (r, local_time(r.measured_at, timezone, locale), describe(r, unit))
                    for r in gateway.latest_readings(p.device_id, 5)
                ],
                "outcome": outcome_name(locale, p.last_outcome) if p.last_outcome else None,
                "last_sync": (
                    local_time(p.last_sync_at, timezone, locale) if p.last_sync_at else None
                ),
            }
            for p in devices
        ]
        patients = hub.patients() if hub is not None else ()
        names = {p.patient_id: p.short_name for p in patients}
        paired_addresses = {p.address.upper() for p in devices}
        nearby = [
            s for s in gateway.last_seen.values() if s.address.upper() not in paired_addresses
        ]
        html = _page(
            locale, "page.html", kind_names=KIND_NAMES, unit=unit, seen=nearby,
            csrf=request.state.csrf,
            paired=paired, message=message or request.query_params.get("msg"), error=error,
            progress=progress, refresh_s=REFRESH_S,
            patients=patients, names=names, can_enrol=hub is not None and hub.enrolment_url,
        )  # fmt: skip
        return HTMLResponse(html, status_code=status)

    def enrol_only(
        request: Request, locale: Locale, status: int, message: str | None
    ) -> HTMLResponse:
        patients = hub.patients() if hub is not None else ()
        html = _page(
            locale, "enrol.html", csrf=request.state.csrf, error=status >= 400,
            message=message or request.query_params.get("msg"),
            starting=", ".join(p.short_name for p in patients),
        )  # fmt: skip
        return HTMLResponse(html, status_code=status)

    def confirm_unpair(request: Request, paired: list[PairedDevice], device_id: str) -> Response:
        """Ask before unpairing (the same form again, with confirm=yes).

        Raises:
            UnknownDeviceError: no paired device has `device_id`.
        """
        locale = prefs(request)[0]
        device = next((d for d in paired if d.device_id == device_id), None)
        if device is None:
            raise UnknownDeviceError(device_id)
        label = device_label(device.device.model, device.name, device.device.serial)
        html = _page(
            locale, "page.html", csrf=request.state.csrf,
            confirm={"device_id": device_id, "label": label},
        )  # fmt: skip
        return HTMLResponse(html)

    def enrol_first(request: Request) -> HTMLResponse:
        return render(
            request,
            409,
            tr(
                prefs(request)[0],
                "Enrol this hub with the code from your care team before pairing.",
            ),
        )

    def back(message: str) -> RedirectResponse:
        return RedirectResponse("/?" + urlencode({"msg": message}), status_code=303)

    def bad(request: Request, exc: InvalidInputError) -> HTMLResponse:
        message = bad_input(prefs(request)[0], exc.field, exc.reason)
        status = 413 if exc.field == "form" and "larger" in exc.reason else 400
        return render(request, status, message)

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        return render(request)

    @app.get("/prefs")
    async def set_prefs(
        request: Request, lang: str | None = None, unit: str | None = None
    ) -> Response:
        response = RedirectResponse("/", status_code=303)
        if lang in LOCALES:
            response.set_cookie("hv_lang", lang, samesite="strict")
        if unit in ("mmol/L", "mg/dL"):
            response.set_cookie("hv_unit", unit, samesite="strict")
        return response

    @app.post("/scan")
    async def scan(request: Request) -> Response:
        if gateway is None:
            return enrol_first(request)
        await gateway.discover(scan_s)
        return RedirectResponse("/", status_code=303)

    @app.post("/pair")
    async def pair(request: Request) -> Response:
        locale = prefs(request)[0]
        if gateway is None:
            return enrol_first(request)
        if any(not tracker.done for tracker, _, _ in pairings.values()):
            return render(
                request,
                409,
                tr(locale, "Another device is being paired. Please wait until it has finished."),
            )
        try:
            form = await _form(request)
            passkey_text = form.get("passkey", "")
            if passkey_text and not (passkey_text.isdigit() and len(passkey_text) == 6):
                raise InvalidInputError("passkey", N_("must be the 6 digits the device shows"))
            served = {p.patient_id for p in (hub.patients() if hub is not None else ())}
            patient_id = form.get("patient_id", "")
            if patient_id not in served:
                raise InvalidInputError(
                    "patient_id", N_("pick one of the patients this hub serves")
                )
            user_2 = form.get("user_2", "")
            if user_2 and (user_2 not in served or user_2 == patient_id):
                raise InvalidInputError(
                    "user_2", N_("pick another patient this hub serves, or nobody")
                )
        except InvalidInputError as exc:
            return bad(request, exc)
        address = form.get("address", "")
        seen = gateway.last_seen.get(address)
        kind = seen.kind if seen is not None else None
        tracker = Tracker(time.monotonic())
        pairing_id = secrets.token_urlsafe(9)
        pairings[pairing_id] = (tracker, (seen.name or "") if seen else "", kind or "")
        while len(pairings) > KEPT_PAIRINGS:
            del pairings[next(iter(pairings))]
        task = asyncio.create_task(
            run_pairing(
                gateway,
                tracker,
                address,
                patient_id,
                passkey=int(passkey_text) if passkey_text else None,
                # A cuff's user 1 is the chosen patient; a user nobody was given is
                # quarantined on the hub, never attributed to the wrong patient.
                user_patients=users_of(kind, patient_id, user_2),
            )
        )
        running.add(task)
        task.add_done_callback(running.discard)
        return RedirectResponse("/?" + urlencode({"pairing": pairing_id}), status_code=303)

    @app.post("/enrol")
    async def enrol(request: Request) -> Response:
        locale = prefs(request)[0]
        if hub is None:
            return bad(request, InvalidInputError("code", "this hub takes no enrolment codes"))
        try:
            code = (await _form(request)).get("code", "")
            identity = await hub.redeem(code)
        except InvalidInputError as exc:
            return bad(request, exc)
        except EnrolmentError as exc:
            if exc.reason == "invalid_code":
                return render(
                    request,
                    400,
                    tr(locale, "That code was not accepted (unknown, expired or already used)."),
                )
            if exc.reason == "rate_limited":
                return render(
                    request, 429, tr(locale, "Too many tries: wait a few minutes and try again.")
                )
            return render(
                request,
                502,
                tr(locale, "The enrolment server could not be reached: %(reason)s", reason=exc),
            )
        if on_enrolled is not None:
            on_enrolled(identity)
        names = ", ".join(p.short_name for p in identity.patients)
        return back(tr(locale, "Enrolled: this hub serves %(names)s.", names=names))

    @app.post("/unpair")
    async def unpair(request: Request) -> Response:
        locale = prefs(request)[0]
        if gateway is None:
            return enrol_first(request)
        try:
            form = await _form(request)
            if form.get("confirm") != "yes":
                return confirm_unpair(request, gateway.devices(), form.get("device_id", ""))
            await gateway.unpair(form.get("device_id", ""))
        except InvalidInputError as exc:
            return bad(request, exc)
        except UnknownDeviceError as exc:
            return bad(request, InvalidInputError("device_id", str(exc)))
        return back(tr(locale, "Device removed."))

    def login_page(request: Request, status: int = 200, message: str | None = None) -> Response:
        locale = prefs(request)[0]
        html = _page(locale, "login.html", csrf=request.state.csrf, message=message)
        return HTMLResponse(html, status_code=status)

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        if the_guard.pin is None:
            return RedirectResponse("/", status_code=303)
        return login_page(request)

    @app.post("/login")
    async def login(request: Request) -> Response:
        if the_guard.pin is None:
            return RedirectResponse("/", status_code=303)
        locale = prefs(request)[0]
        client = request.client.host if request.client else "?"
        try:
            pin = (await _form(request)).get("pin", "")
        except InvalidInputError:
            pin = ""
        if the_guard.locked_out(client):
            return login_page(
                request,
                429,
                tr(locale, "Too many wrong PINs. Please wait a minute, then try again."),
            )
        token = the_guard.try_login(client, pin)
        if token is None:
            locked = the_guard.locked_out(client)
            return login_page(
                request,
                429 if locked else 401,
                (
                    tr(locale, "Too many wrong PINs. Please wait a minute, then try again.")
                    if locked
                    else tr(locale, "That PIN is not right. Please try again.")
                ),
            )
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, max_age=SESSION_S, httponly=True, samesite="strict",
            secure=the_guard.tls,
        )  # fmt: skip
        return response

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
