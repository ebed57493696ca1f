"""Signed acknowledgement callback tokens (pure: the key and the time come in).

A high-priority event carries a link the receiving care team can POST to (with the member's id)
to acknowledge the alert without an API client. The link holds a token that binds the alert, the
team it was sent to and an expiry, signed with HMAC-SHA256 under a server key, so a token can
neither be forged nor moved to another alert or team. Format::

    v1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "v1." + claims))>
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

VERSION: Final = "v1"
MIN_KEY_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class AckClaims:
    """What an acknowledgement token allows: `team_id`'s members may acknowledge `alert_id`."""

    alert_id: str
    team_id: str
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
        {"a": claims.alert_id, "t": claims.team_id, "e": int(claims.expires_at.timestamp())},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    signed = f"{VERSION}.{_b64(body)}"
    mac = hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest()
    return f"{signed}.{_b64(mac)}"


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
        raise AckTokenError("token", "not a v1 acknowledgement token")
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
        and isinstance(body.get("a"), str)
        and isinstance(body.get("t"), str)
        and isinstance(body.get("e"), int)
    ):
        raise AckTokenError("token", "claims are incomplete")
    expires_at = datetime.fromtimestamp(body["e"], tz=UTC)
    if now >= expires_at:
        raise AckTokenError("token", f"expired at {expires_at.isoformat()}")
    return AckClaims(alert_id=body["a"], team_id=body["t"], expires_at=expires_at)
