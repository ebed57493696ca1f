"""The care-team dashboard under ``/dashboard`` (HTML, server-rendered, no scripts, no CDN).

Sign-in is the API's own bearer token, kept in an HttpOnly, SameSite=Strict cookie scoped to
``/dashboard`` and verified on every request exactly as a bearer header is
(`api.http.authenticate`: signature, expiry, rate limit). In development, a code
(``HV_API_DASHBOARD_DEV_CODE``) signs in any active member with the dashboard's scopes.

Reads go through `api.fhir_routing.gated` (one transaction, consent decided and audited per
section); acknowledge and resolve go through `api.routes_rest.handle_alert`, the REST routes'
own path. Every form POST carries a token bound to the signed-in token (HMAC with the API's
signing key) and must come from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Annotated, Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials

from alerts.delivery.handling import ACKNOWLEDGE
from alerts.delivery.tables import RESOLVE
from api import tokens
from api.dashboard import render, views
from api.dashboard.i18n import (
    LOCALES,
    TEMPLATE_DIR,
    UNITS,
    GlucoseUnit,
    Locale,
    choose_locale,
    choose_unit,
)
from api.errors import ApiError, ForbiddenError, InvalidRequestError, UnauthenticatedError
from api.fhir_routing import gated
from api.http import authenticate, services
from api.routes_rest import handle_alert
from api.tokens import Actor, Principal
from careteam import registry
from careteam.errors import NotFoundError as RecordNotFoundError

COOKIE: Final = "hv_dashboard"
PREFS_COOKIE: Final = "hv_dashboard_prefs"
PATH: Final = "/dashboard"
SCOPES: Final = (
    "user/Patient.read user/Observation.read user/Flag.read user/Flag.write user/Device.read "
    "user/Consent.read user/AuditEvent.read"
)
DEV_TTL: Final = timedelta(hours=8)

router = APIRouter(prefix=PATH, include_in_schema=False)


class _SignIn(Exception):
    """No valid sign-in: answer with the login page."""


def _prefs(request: Request) -> tuple[Locale, GlucoseUnit]:
    raw = request.cookies.get(PREFS_COOKIE, "")
    chosen_locale, _, chosen_unit = raw.partition("|")
    accept = request.headers.get("accept-language")
    return choose_locale(accept, chosen_locale), choose_unit(accept, chosen_unit)


def _principal(request: Request) -> Principal:
    token = request.cookies.get(COOKIE)
    if not token:
        raise _SignIn
    try:
        return authenticate(
            request, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
    except UnauthenticatedError:
        raise _SignIn from None


def _form_token(request: Request) -> str:
    secret = services(request).settings.signing_key.get_secret_value().encode()
    token = request.cookies.get(COOKIE, "")
    return hmac.new(secret, b"dashboard-form:" + token.encode(), hashlib.sha256).hexdigest()


def _check_post(request: Request, form_token: str | None) -> None:
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is not None:
        here = urlsplit(str(request.base_url))
        there = urlsplit(origin)
        if (there.scheme, there.netloc) != (here.scheme, here.netloc):
            raise ForbiddenError("the form was sent from another site")
    if form_token is not None and not hmac.compare_digest(form_token, _form_token(request)):
        raise ForbiddenError("the form is stale; reload the page")


def _page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    locale, unit = _prefs(request)
    base = {
        "locale": locale,
        "unit": unit,
        "locales": LOCALES,
        "units": UNITS,
        "form_token": _form_token(request),
        "path": request.url.path,
        "render": render,
    }
    html = render.render(locale, template, {**base, **context})
    response = HTMLResponse(html, status_code=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _login_page(request: Request, error: str | None = None, status: int = 200) -> HTMLResponse:
    settings = services(request).settings
    return _page(
        request,
        "login.html",
        status=status,
        error=error,
        dev_login=settings.dashboard_dev_code is not None,
    )


def _error_page(request: Request, exc: ApiError) -> HTMLResponse:
    return _page(request, "error.html", status=exc.status, message=str(exc))


def _signed_in(request: Request, token: str) -> Response:
    response = RedirectResponse(f"{PATH}/", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    """The sign-in page: paste a token, or (development) a member id and the code."""
    return _login_page(request)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=8192)]) -> Response:
    """Sign in with a member's bearer token (``homevitals token issue``)."""
    _check_post(request, None)
    svc = services(request)
    try:
        principal = tokens.verify(token.strip(), svc.settings.token_key(), now=svc.clock())
    except UnauthenticatedError:
        return _login_page(request, render.tr(_prefs(request)[0], "That token is not valid."), 401)
    if principal.actor is not Actor.MEMBER:
        return _login_page(
            request, render.tr(_prefs(request)[0], "Sign in with a care-team member's token."), 403
        )
    return _signed_in(request, token.strip())


@router.post("/dev-login")
def dev_login(
    request: Request,
    member_id: Annotated[str, Form(max_length=64)],
    code: Annotated[str, Form(max_length=200)],
) -> Response:
    """Development only: sign in as an active member with the development code."""
    _check_post(request, None)
    svc = services(request)
    expected = svc.settings.dashboard_dev_code
    locale = _prefs(request)[0]
    if expected is None:
        return _login_page(request, render.tr(locale, "Development sign-in is off."), 404)
    if not hmac.compare_digest(code.encode(), expected.get_secret_value().encode()):
        return _login_page(request, render.tr(locale, "That code is not right."), 401)
    with svc.engine.connect() as conn:
        try:
            member = registry.get_member(conn, member_id.strip())
        except RecordNotFoundError:
            member = None
    if member is None or not member.active:
        return _login_page(request, render.tr(locale, "No active member has that id."), 401)
    token = tokens.issue(
        svc.settings.token_key(),
        Actor.MEMBER,
        member.member_id,
        SCOPES,
        now=svc.clock(),
        ttl=DEV_TTL,
    )
    return _signed_in(request, token)


@router.post("/logout")
def logout(request: Request, form_token: Annotated[str, Form()]) -> Response:
    """Forget the sign-in."""
    _check_post(request, form_token)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PATH)
    return response


@router.post("/preferences")
def preferences(
    request: Request,
    form_token: Annotated[str, Form()],
    language: Annotated[str, Form()],
    unit: Annotated[str, Form()],
    back: Annotated[str, Form()] = f"{PATH}/",
) -> Response:
    """Keep the user's language and glucose unit."""
    _check_post(request, form_token)
    if language not in LOCALES or unit not in UNITS:
        return _error_page(request, ForbiddenError("unknown language or unit"))
    target = back if back.startswith(f"{PATH}/") and "//" not in back else f"{PATH}/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        PREFS_COOKIE, f"{language}|{unit}", path=PATH, samesite="strict", max_age=365 * 86400
    )
    return response


@router.get("/", response_class=HTMLResponse)
def patient_list(request: Request) -> HTMLResponse:
    """The patients the team follows: open alerts by priority, data freshness, hub contact."""
    try:
        principal = _principal(request)
        rows = gated(request, principal, "Patient", "search", views.patient_list)
    except _SignIn:
        return _login_page(request)
    except ApiError as exc:
        return _error_page(request, exc)
    return _page(request, "patients.html", rows=rows, now=services(request).clock())


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(request: Request, patient_id: str) -> HTMLResponse:
    """One patient: blood pressure, glucose profile, alerts with evidence, devices, consent
    and the audit trail; each section only where the patient's consent allows."""
    try:
        principal = _principal(request)
        page = gated(
            request, principal, "Patient", "read", lambda gate: views.patient_page(gate, patient_id)
        )
    except _SignIn:
        return _login_page(request)
    except ApiError as exc:
        return _error_page(request, exc)
    locale, unit = _prefs(request)
    now = services(request).clock()
    return _page(
        request,
        "patient.html",
        page=page,
        now=now,
        bp_svg=render.bp_svg(page, locale, now),
        agp_svg=render.agp_svg(page, locale, unit),
        shares=render.glucose_shares(page, unit),
        glucose_low=render.glucose_text(page.glucose_low_mmol_l, unit),
        glucose_high=render.glucose_text(page.glucose_high_mmol_l, unit),
    )


def _handle(request: Request, alert_id: str, action: str, note: str, form_token: str) -> Response:
    try:
        _check_post(request, form_token)
        principal = _principal(request)
        if action == RESOLVE and not note.strip():
            raise InvalidRequestError("note", "say why the alert is resolved")
        handle_alert(request, principal, alert_id, action, note.strip() or None)
        with services(request).engine.connect() as conn:
            patient_id = views.alert_patient(conn, alert_id)
    except _SignIn:
        return _login_page(request)
    except ApiError as exc:
        return _error_page(request, exc)
    return RedirectResponse(f"{PATH}/patients/{patient_id}#alert-{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    request: Request,
    alert_id: str,
    form_token: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Acknowledge an alert (audited, stops its escalation)."""
    return _handle(request, alert_id, ACKNOWLEDGE, note, form_token)


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    request: Request,
    alert_id: str,
    form_token: Annotated[str, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Resolve an alert as handled, with why (audited)."""
    return _handle(request, alert_id, RESOLVE, note, form_token)


@router.get("/static/dashboard.css")
def stylesheet() -> Response:
    """The one stylesheet (served here: no CDN)."""
    css = (TEMPLATE_DIR / "dashboard.css").read_text()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
