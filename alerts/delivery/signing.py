"""Standard Webhooks signatures, through the reference `standardwebhooks` library.

Headers (standardwebhooks.com, "Signature scheme"): `webhook-id` (stable across retries: the
event id), `webhook-timestamp` (integer Unix seconds, new on every attempt) and
`webhook-signature`: space-separated ``v1,<base64 HMAC-SHA256(secret, id.timestamp.body)>``, one
per active secret, so receivers verify with either secret while a rotation overlaps
(Standard Webhooks specification; docs/threat-model.md).
"""

from __future__ import annotations

import base64
import secrets as _secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts.delivery.errors import InvalidFieldError

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - the format prefix, not a secret
SECRET_BYTES: Final = 32


def new_secret() -> str:
    """A fresh `whsec_` secret with 32 random bytes (the spec asks for 24 to 64)."""
    return SECRET_PREFIX + base64.b64encode(_secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def sign_headers(
    webhook_id: str, at: datetime, body: bytes, secrets: Sequence[str]
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt, signed with every secret given.

    Raises:
        InvalidFieldError: no secret, a naive `at`, or a body that is not UTF-8.
    """
    if not secrets:
        raise InvalidFieldError("secrets", "an endpoint needs at least one active secret")
    if at.tzinfo is None:
        raise InvalidFieldError("at", "must be an aware datetime")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidFieldError("body", "must be UTF-8 JSON") from exc
    at_utc = at.astimezone(UTC).replace(microsecond=0)
    signatures = [Webhook(s).sign(webhook_id, at_utc, text) for s in secrets]
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at_utc.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def verify(body: bytes, headers: Mapping[str, str], secrets: Sequence[str]) -> object:
    """Verify a received webhook against any of `secrets` and return the parsed JSON body.

    The timestamp is checked against the current time with the library's 5-minute tolerance.

    Raises:
        InvalidFieldError: field ``"webhook-signature"`` when no secret verifies (missing
            headers, stale timestamp, tampered body or wrong secret).
    """
    last: Exception | None = None
    for secret in secrets:
        try:
            return Webhook(secret).verify(body, dict(headers))
        except (WebhookVerificationError, ValueError) as exc:
            last = exc
    raise InvalidFieldError("webhook-signature", f"does not verify: {last}")
