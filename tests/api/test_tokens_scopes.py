"""Tokens and scopes: SMART v1/v2 parsing, issue/verify, forged tokens
(docs/threat-model.md, API)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from api.errors import TokenError, UnauthenticatedError
from api.scopes import Action, Context, Scope, ScopeError, allows, parse_scope, parse_scopes
from api.tokens import Actor, TokenKey, issue, verify

KEY = TokenKey(b"k" * 48 + b"0123456789abcdef", "homevitals", "homevitals-api")
NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def test_v1_scopes_parse_to_letters() -> None:
    assert parse_scope("user/Observation.read") == Scope(
        Context.USER, "Observation", frozenset("rs")
    )
    assert parse_scope("user/Flag.write") == Scope(Context.USER, "Flag", frozenset("cud"))
    assert parse_scope("patient/*.read") == Scope(Context.PATIENT, "*", frozenset("rs"))
    assert parse_scope("system/*.*") == Scope(Context.SYSTEM, "*", frozenset("cruds"))
    assert parse_scope("user/Observation.rs") == Scope(Context.USER, "Observation", frozenset("rs"))
    assert parse_scope("openid") is None
    assert parse_scope("launch/patient") is None


@pytest.mark.parametrize(
    "bad", ["user/observation.read", "admin/*.read", "user/Observation", "user/Obs.rx", "x y"]
)
def test_malformed_scopes_are_refused(bad: str) -> None:
    with pytest.raises(ScopeError):
        parse_scopes(bad)


def test_allows_matches_context_resource_and_action() -> None:
    scopes = parse_scopes("user/Observation.read user/Flag.write")
    assert allows(scopes, Context.USER, "Observation", Action.READ)
    assert allows(scopes, Context.USER, "Observation", Action.SEARCH)
    assert not allows(scopes, Context.USER, "Observation", Action.UPDATE)
    assert allows(scopes, Context.USER, "Flag", Action.UPDATE)
    assert not allows(scopes, Context.USER, "Flag", Action.READ)
    assert not allows(scopes, Context.PATIENT, "Observation", Action.READ)
    wildcard = parse_scopes("patient/*.read")
    assert allows(wildcard, Context.PATIENT, "AuditEvent", Action.SEARCH)


def test_issue_then_verify_round_trips() -> None:
    token = issue(KEY, Actor.MEMBER, "m-1", "user/*.read", now=NOW, ttl=timedelta(hours=1))
    principal = verify(token, KEY, now=NOW + timedelta(minutes=59))
    assert principal.actor is Actor.MEMBER
    assert principal.subject == "m-1"
    assert principal.scopes == (Scope(Context.USER, "*", frozenset("rs")),)
    assert principal.expires_at == NOW + timedelta(hours=1)
    patient = verify(
        issue(KEY, Actor.PATIENT, "P1", "patient/*.read", now=NOW, ttl=timedelta(hours=1)),
        KEY,
        now=NOW,
    )
    assert (patient.actor, patient.subject) == (Actor.PATIENT, "P1")


def test_issue_refuses_scopes_of_another_context_and_bad_ttl() -> None:
    with pytest.raises(TokenError, match="user/ scopes only"):
        issue(KEY, Actor.MEMBER, "m-1", "patient/*.read", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(TokenError, match="at least one resource scope"):
        issue(KEY, Actor.MEMBER, "m-1", "openid", now=NOW, ttl=timedelta(hours=1))
    with pytest.raises(TokenError, match="ttl"):
        issue(KEY, Actor.MEMBER, "m-1", "user/*.read", now=NOW, ttl=timedelta(days=31))
    with pytest.raises(TokenError, match="not a SMART scope"):
        issue(KEY, Actor.MEMBER, "m-1", "user/*.readx", now=NOW, ttl=timedelta(hours=1))


def _claims(**over: object) -> dict[str, object]:
    claims: dict[str, object] = {
        "iss": KEY.issuer,
        "aud": KEY.audience,
        "sub": "m-1",
        "iat": int(NOW.timestamp()),
        "nbf": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(hours=1)).timestamp()),
        "jti": "j-1",
        "scope": "user/*.read",
        "hv_actor": "member",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _unsigned(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


FORGED = {
    "alg none": _unsigned(_claims()),
    "other key": jwt.encode(_claims(), b"another-key-of-32-bytes-or-more!!", algorithm="HS256"),
    "HS512": jwt.encode(_claims(), KEY.secret, algorithm="HS512"),
    "wrong issuer": jwt.encode(_claims(iss="evil"), KEY.secret, algorithm="HS256"),
    "wrong audience": jwt.encode(_claims(aud="other-api"), KEY.secret, algorithm="HS256"),
    "expired": jwt.encode(
        _claims(exp=int((NOW - timedelta(minutes=2)).timestamp())), KEY.secret, algorithm="HS256"
    ),
    "not yet valid": jwt.encode(
        _claims(nbf=int((NOW + timedelta(minutes=5)).timestamp())), KEY.secret, algorithm="HS256"
    ),
    "no scope": jwt.encode(_claims(scope=None), KEY.secret, algorithm="HS256"),
    "no exp": jwt.encode(_claims(exp=None), KEY.secret, algorithm="HS256"),
    "bad scope": jwt.encode(_claims(scope="root"), KEY.secret, algorithm="HS256"),
    "unknown actor": jwt.encode(_claims(hv_actor="admin"), KEY.secret, algorithm="HS256"),
    "patient claim for another patient": jwt.encode(
        _claims(hv_actor="patient", sub="P1", patient="P2", scope="patient/*.read"),
        KEY.secret,
        algorithm="HS256",
    ),
    "garbage": "not.a.token",
    "too long": "a" * 9000,
}


@pytest.mark.parametrize("name", sorted(FORGED))
def test_forged_tokens_are_refused(name: str) -> None:
    with pytest.raises(UnauthenticatedError):
        verify(FORGED[name], KEY, now=NOW)


def test_expiry_has_sixty_seconds_leeway_and_no_more() -> None:
    token = issue(KEY, Actor.MEMBER, "m-1", "user/*.read", now=NOW, ttl=timedelta(minutes=5))
    verify(token, KEY, now=NOW + timedelta(minutes=5, seconds=59))
    with pytest.raises(UnauthenticatedError, match="expired"):
        verify(token, KEY, now=NOW + timedelta(minutes=6, seconds=1))


def test_scopes_of_another_context_in_a_token_grant_nothing() -> None:
    token = jwt.encode(
        _claims(scope="user/*.read patient/*.read system/*.read"), KEY.secret, algorithm="HS256"
    )
    principal = verify(token, KEY, now=NOW)
    assert {s.context for s in principal.scopes} == {Context.USER}
