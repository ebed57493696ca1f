"""Acknowledgement link tokens: bound to event, alert, team and member; unforgeable; expiring."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from alerts.delivery import ack_token
from alerts.delivery.errors import AckTokenError

KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLAIMS = ack_token.AckClaims("event-1", "alert-1", "team-1", "member-1", NOW + timedelta(hours=1))


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


@pytest.mark.parametrize(
    "other",
    [
        replace(CLAIMS, alert_id="alert-2"),
        replace(CLAIMS, member_id="member-2"),
        replace(CLAIMS, team_id="team-2"),
        replace(CLAIMS, event_id="event-2"),
    ],
)
def test_claims_cannot_be_moved_to_another_alert_member_or_team(
    other: ack_token.AckClaims,
) -> None:
    token = ack_token.issue(CLAIMS, KEY)
    version, _claims, mac = token.split(".")
    forged = ".".join([version, ack_token.issue(other, KEY).split(".")[1], mac])
    with pytest.raises(AckTokenError, match="signature"):
        ack_token.verify(forged, KEY, NOW)


def test_tokens_are_the_same_for_the_same_claims() -> None:
    assert ack_token.issue(CLAIMS, KEY) == ack_token.issue(CLAIMS, KEY)


@pytest.mark.parametrize("token", ["", "v2", "v1.a.b", "v2.!!!.???", "v2.e30.AAAA", "a.b.c.d"])
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(AckTokenError):
        ack_token.verify(token, KEY, NOW)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        ack_token.issue(CLAIMS, b"short")
