"""Acknowledgement callback tokens: bound to alert and team, unforgeable, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.delivery import ack_token
from alerts.delivery.errors import AckTokenError

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLAIMS = ack_token.AckClaims("alert-1", "team-1", NOW + timedelta(hours=1))


def test_round_trip() -> None:
    token = ack_token.issue(CLAIMS, KEY)
    assert ack_token.verify(token, KEY, NOW) == CLAIMS


def test_expired_token_is_refused() -> None:
    token = ack_token.issue(CLAIMS, KEY)
    with pytest.raises(AckTokenError, match="expired") as caught:
        ack_token.verify(token, KEY, NOW + timedelta(hours=1))
    assert caught.value.field == "token"


def test_wrong_key_is_refused() -> None:
    token = ack_token.issue(CLAIMS, KEY)
    with pytest.raises(AckTokenError, match="signature"):
        ack_token.verify(token, b"x" * 32, NOW)


def test_claims_cannot_be_moved_to_another_alert() -> None:
    token = ack_token.issue(CLAIMS, KEY)
    other = ack_token.issue(ack_token.AckClaims("alert-2", "team-1", CLAIMS.expires_at), KEY)
    version, _claims, mac = token.split(".")
    forged = ".".join([version, other.split(".")[1], mac])
    with pytest.raises(AckTokenError, match="signature"):
        ack_token.verify(forged, KEY, NOW)


@pytest.mark.parametrize("token", ["", "v1", "v2.a.b", "v1.!!!.???", "v1.e30.AAAA", "a.b.c.d"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(AckTokenError):
        ack_token.verify(token, KEY, NOW)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        ack_token.issue(CLAIMS, b"short")
