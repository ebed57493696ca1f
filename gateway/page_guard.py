"""Who may drive the hub's pairing page, and from where (an ASGI middleware in front of it).

The page pairs devices to patients, so a request that drives it must come from a person on
the page itself (threat model, boundary 7):

- **Host**: only an IP literal, ``localhost`` or a configured name. A hostile name rebound to
  the hub's address (DNS rebinding) arrives with its own name and is refused (421).
- **Origin**: a POST must carry an ``Origin`` (or, lacking one, a ``Referer``) naming the page
  itself; a form posted from another site is refused (403).
- **CSRF token**: every form carries the token of the browser's ``hv_csrf`` cookie
  (HttpOnly, SameSite=Strict); a POST whose field does not match it is refused (403).
- **Login**: bound beyond loopback, the page asks for the hub's PIN (8 digits, shown once at
  first start, stored as a scrypt hash in the data directory); a session is a random token in
  an HttpOnly, SameSite=Strict cookie, Secure over TLS, for `SESSION_S`. Wrong PINs lock the
  client's address out after `MAX_FAILURES`, for a time that doubles.
- **Headers** on every response: a CSP with ``frame-ancestors 'none'`` and no scripts,
  ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy:
  same-origin`` (not no-referrer, which makes browsers send ``Origin: null`` on POSTs), and
  ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

CSRF_COOKIE: Final = "hv_csrf"
CSRF_FIELD: Final = "csrf"
SESSION_COOKIE: Final = "hv_session"
SESSION_S: Final = 12 * 3600
MAX_FAILURES: Final = 5
LOCKOUT_S: Final = 60.0
PIN_DIGITS: Final = 8
MAX_BODY_BYTES: Final = 16 * 1024  # the page itself refuses forms over 4 KiB, naming the field
OPEN_PATHS: Final = frozenset({"/login", "/healthz"})
HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1}

Clock = Callable[[], float]


def is_loopback_host(host: str) -> bool:
    """Whether a bind address is loopback only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, tls: bool) -> str | None:
    """The warning to log when the page is reachable beyond the hub without TLS, else None."""
    if is_loopback_host(host) or tls:
        return None
    return (
        f"pairing page bound to {host} without TLS: its PIN and session cookie cross the home "
        "network in clear text (set page_tls_cert and page_tls_key)"
    )


class PinFile:
    """The hub PIN, kept as a salted scrypt hash (the PIN itself is shown once, never stored)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> str:
        """Make a new PIN, store its hash (mode 0600) and return the PIN to show once."""
        pin = "".join(secrets.choice("0123456789") for _ in range(PIN_DIGITS))
        salt = secrets.token_bytes(16)
        digest = hashlib.scrypt(pin.encode(), salt=salt, **_SCRYPT)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(f"scrypt${salt.hex()}${digest.hex()}\n")
        temp.chmod(0o600)
        temp.replace(self.path)
        return pin

    def check(self, pin: str) -> bool:
        """Whether `pin` is the hub's PIN (constant-time comparison of the hashes)."""
        try:
            scheme, salt_hex, digest_hex = self.path.read_text().strip().split("$")
        except (OSError, ValueError):
            return False
        if scheme != "scrypt":
            return False
        candidate = hashlib.scrypt(pin.encode(), salt=bytes.fromhex(salt_hex), **_SCRYPT)
        return hmac.compare_digest(candidate, bytes.fromhex(digest_hex))


@dataclass
class Guard:
    """The page's access rules and its in-memory sessions and lockouts."""

    pin: PinFile | None  # None: loopback only, no login
    allowed_hosts: frozenset[str] = frozenset()
    tls: bool = False
    clock: Clock = time.monotonic
    sessions: dict[str, float] = field(default_factory=dict)  # token -> expiry
    failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # ip -> (n, locked)

    def host_allowed(self, host_header: str) -> bool:
        """An IP literal, localhost, or a configured name (port ignored)."""
        host = urlsplit(f"//{host_header}").hostname or ""
        if host == "localhost" or host in self.allowed_hosts:
            return True
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True

    def logged_in(self, request: Request) -> bool:
        if self.pin is None:
            return True
        token = request.cookies.get(SESSION_COOKIE, "")
        expiry = self.sessions.get(token)
        return expiry is not None and expiry > self.clock()

    def locked_out(self, client: str) -> bool:
        count, locked_until = self.failures.get(client, (0, 0.0))
        return count >= MAX_FAILURES and locked_until > self.clock()

    def try_login(self, client: str, pin: str) -> str | None:
        """A new session token for the right PIN; None (and a counted failure) otherwise."""
        assert self.pin is not None
        if self.locked_out(client):
            return None
        if self.pin.check(pin):
            self.failures.pop(client, None)
            token = secrets.token_urlsafe(32)
            self.sessions[token] = self.clock() + SESSION_S
            return token
        count = self.failures.get(client, (0, 0.0))[0] + 1
        lock_s = LOCKOUT_S * 2 ** max(0, count - MAX_FAILURES)
        self.failures[client] = (count, self.clock() + lock_s if count >= MAX_FAILURES else 0.0)
        log.warning("pairing page: wrong PIN from %s (%d in a row)", client, count)
        return None


def _same_origin(request: Request) -> bool:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return False
    parts = urlsplit(source)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.headers.get("host", ""))


class GuardMiddleware(BaseHTTPMiddleware):
    """Applies `Guard` to every request (see the module docstring)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        super().__init__(app)
        self.guard = guard

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await self._decide(request, call_next)
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response

    async def _decide(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not self.guard.host_allowed(request.headers.get("host", "")):
            return PlainTextResponse("unknown host name for this hub", status_code=421)
        cookie = request.cookies.get(CSRF_COOKIE) or ""
        fresh = len(cookie) < 32
        csrf = secrets.token_urlsafe(32) if fresh else cookie
        request.state.csrf = csrf
        if request.method not in ("GET", "HEAD"):
            refusal = await self._post_refusal(request, csrf, fresh)
            if refusal is not None:
                return refusal
        if request.url.path not in OPEN_PATHS and not self.guard.logged_in(request):
            if request.method in ("GET", "HEAD"):
                response: Response = RedirectResponse("/login", status_code=303)
            else:
                response = PlainTextResponse("log in with the hub PIN first", status_code=401)
        else:
            response = await call_next(request)
        if fresh:
            response.set_cookie(
                CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=self.guard.tls
            )
        return response

    async def _post_refusal(self, request: Request, csrf: str, fresh: bool) -> Response | None:
        if not _same_origin(request):
            return PlainTextResponse("cross-site request refused", status_code=403)
        length = request.headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            # Forms are small and browsers send their length: nothing unbounded is read.
            return PlainTextResponse("form missing its length, or too large", status_code=413)
        body = await request.body()  # starlette caches it for the route
        sent = _form_field(body, CSRF_FIELD)
        if fresh or sent is None or not hmac.compare_digest(sent.encode(), csrf.encode()):
            return PlainTextResponse("missing or wrong form token; reload the page", 403)
        return None


def _form_field(body: bytes, name: str) -> str | None:
    try:
        values = parse_qs(body.decode("utf-8"), max_num_fields=50).get(name)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if values else None
