"""One HTTP attempt: POST to the checked, pinned address; no redirects; capped response.

SSRF and retries: docs/threat-model.md. The request goes to the IP address the guard
approved, with the URL's host in the `Host` header and as the TLS server name (httpcore's
`sni_hostname` extension), so certificates are still verified against the registered host name.
Redirects are never followed (a 3xx is a failed attempt), proxies from the environment are
ignored (they would bypass the pinning), and the response is read to at most 64 KiB within the
attempt's total time budget.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx

from alerts.delivery.ssrf import IPAddress, Target

MAX_RESPONSE_BYTES: Final = 64 * 1024

SUCCESS = "success"
HTTP_STATUS = "http_status"
REDIRECT = "redirect"
GONE = "gone"
TIMEOUT = "timeout"
NETWORK = "network"
REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one attempt produced.

    Attributes:
        outcome: one of the module constants (success, http_status, redirect, gone...).
        latency_ms: wall time of the attempt, milliseconds.
        status_code: the HTTP status, if a response arrived.
        retry_after: the raw `Retry-After` header, if any.
        error: a short description for failures.
    """

    outcome: str
    latency_ms: float
    status_code: int | None = None
    retry_after: str | None = None
    error: str | None = None


def new_client(timeout_s: float) -> httpx.Client:
    """An httpx client for deliveries: no redirects, no environment proxies, given timeouts."""
    return httpx.Client(follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout_s))


def _outcome(status: int) -> str:
    if 200 <= status < 300:
        return SUCCESS
    if status == 410:
        return GONE
    if 300 <= status < 400:
        return REDIRECT
    return HTTP_STATUS


def post(
    client: httpx.Client,
    url: str,
    target: Target,
    address: IPAddress,
    *,
    body: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
) -> AttemptResult:
    """POST `body` to `url`, connecting to `address` only. Never raises for network faults."""
    parsed = httpx.URL(url)
    pinned = parsed.copy_with(host=str(address))
    default_port = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host  # IPv6 literal
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    all_headers = {
        **headers,
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": "homevitals-webhooks/1",
    }
    started = time.monotonic()

    def elapsed_ms() -> float:
        return (time.monotonic() - started) * 1000.0

    try:
        with client.stream(
            "POST",
            pinned,
            content=body,
            headers=all_headers,
            timeout=httpx.Timeout(timeout_s),
            extensions={"sni_hostname": target.host},
        ) as response:
            # The status line decides the outcome; the body is read (and discarded) only to
            # end the exchange cleanly, and cut off past the cap or the time budget.
            received, note = 0, None
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > max_response_bytes:
                    note = f"response cut off at {max_response_bytes} bytes"
                    break
                if time.monotonic() - started > timeout_s:
                    note = "response body cut off at the time budget"
                    break
            status = response.status_code
            outcome = _outcome(status)
            error = None if outcome == SUCCESS else f"HTTP {status}"
            return AttemptResult(
                outcome,
                elapsed_ms(),
                status,
                retry_after=response.headers.get("retry-after"),
                error=note if error is None else error if note is None else f"{error}; {note}",
            )
    except httpx.TimeoutException as exc:
        return AttemptResult(TIMEOUT, elapsed_ms(), error=f"{type(exc).__name__}: timed out")
    except httpx.HTTPError as exc:
        return AttemptResult(NETWORK, elapsed_ms(), error=f"{type(exc).__name__}: {exc}"[:500])
