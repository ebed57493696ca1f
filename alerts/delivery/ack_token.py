"""Acknowledgement links, one per paged member (pure: the key and the time come in).

A high-priority event names the members its team should page; each of them gets their own link
in the webhook (`links.acknowledge_members`), whose token binds the event, the team, the member
and an expiry, signed with HMAC-SHA256 under a server key. So a link acknowledges as exactly one
member, cannot be forged or moved to another alert, team or member, and expires; the
acknowledgement app makes it single use (it records the token's digest) and records the source.
The token is a pure function of its claims, so every retry of a delivery carries the same links
in the same bytes. Format::

    v2.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "v2." + claims))>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from alerts.delivery.errors import AckTokenError

VERSION: Final = "v2"
MIN_KEY_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What a link allows: `member_id` (of `team_id`) acknowledges the alert of `event_id`."""

    event_id: str
    alert_id: str
    team_id: str
    member_id: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _check_key(key: bytes) -> None:
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"key: needs at least {MIN_KEY_BYTES} bytes, got {len(key)}")


def issue(claims: AckClaims, key: bytes) -> str:
    """Sign `claims` into a token.

    Raises:
        ValueError: the key is shorter than 32 bytes or `expires_at` is naive.
    """
    _check_key(key)
    if claims.expires_at.tzinfo is None:
        raise ValueError("expires_at: must be an aware datetime")
    body = json.dumps(
        {
            "v": claims.event_id,
            "a": claims.alert_id,
            "t": claims.team_id,
            "m": claims.member_id,
            "e": int(claims.expires_at.timestamp()),
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signed = f"{VERSION}.{_b64(body)}"
    mac = hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()
    return f"{signed}.{_b64(mac)}"


def digest(token: str) -> str:
    """SHA-256 (hex) of a token: what the record keeps to make a link single use."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify(token: str, key: bytes, now: datetime) -> AckClaims:
    """Check a token's signature and expiry and return its claims.

    Raises:
        AckTokenError: malformed, signed with another key, tampered with, or expired
            (field ``"token"``).
        ValueError: the key is shorter than 32 bytes.
    """
    _check_key(key)
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise AckTokenError("token", f"not a {VERSION} acknowledgement token")
    signed = f"{parts[0]}.{parts[1]}"
    try:
        given = _unb64(parts[2])
        body = json.loads(_unb64(parts[1]))
    except (binascii.Error, ValueError) as exc:
        raise AckTokenError("token", "not decodable") from exc
    expected = hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise AckTokenError("token", "signature does not match")
    if not (
        isinstance(body, dict)
        and all(isinstance(body.get(k), str) for k in "vatm")
        and isinstance(body.get("e"), int)
    ):
        raise AckTokenError("token", "claims are incomplete")
    expires_at = datetime.fromtimestamp(body["e"], tz=UTC)
    if now >= expires_at:
        raise AckTokenError("token", f"expired at {expires_at.isoformat()}")
    return AckClaims(body["v"], body["a"], body["t"], body["m"], expires_at)
