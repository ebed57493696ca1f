"""Tokens of an identity provider, verified with its JWKS served by a real uvicorn: RS256 by
``kid``, callers named by ``fhirUser``, ``patient`` or a backend's client id; key confusion
(HS256 signed with the public key), an unknown ``kid``, ``alg: none`` and the wrong issuer are
refused (401)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.alerts.delivery.receiver import UvicornThread
from tests.api.record import Seeded
from tests.api.support import serve

PROVIDER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(kid: str) -> dict[str, object]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(PROVIDER_KEY.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(scope="module")
def api_with_provider(record_engine: sa.Engine, seeded: Seeded) -> Iterator[str]:
    async def keys(_: Request) -> JSONResponse:
        return JSONResponse({"keys": [_jwk("k1")]})

    provider = UvicornThread(Starlette(routes=[Route("/jwks", keys)]))
    provider.start()
    try:
        with serve(
            record_engine,
            jwks_url=f"http://127.0.0.1:{provider.port}/jwks",
            environment="development",
        ) as base:
            yield base
    finally:
        provider.stop()


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "homevitals",
        "aud": "homevitals-api",
        "sub": "idp-user-1",
        "exp": now + 600,
        "iat": now,
        "scope": "openid fhirUser user/*.read",
    }
    claims.update(over)
    return claims


def _rs256(claims: dict[str, object], kid: str = "k1", key: object = PROVIDER_KEY) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


def _status(base: str, path: str, bearer: str) -> int:
    return httpx.get(base + path, headers={"Authorization": f"Bearer {bearer}"}).status_code


def test_a_providers_member_token_reads_within_consent(
    api_with_provider: str, seeded: Seeded
) -> None:
    member = _rs256(_claims(fhirUser=f"https://idp.example/fhir/Practitioner/{seeded.member_a}"))
    assert _status(api_with_provider, f"/fhir/Observation/{seeded.bp_reading}", member) == 200
    other = _rs256(_claims(fhirUser=f"Practitioner/{seeded.member_b}"))
    assert _status(api_with_provider, f"/fhir/Observation/{seeded.bp_reading}", other) == 403


def test_patient_and_backend_tokens_of_the_provider(api_with_provider: str, seeded: Seeded) -> None:
    patient = _rs256(_claims(patient="P1", scope="launch/patient patient/*.read"))
    assert _status(api_with_provider, "/fhir/Observation?patient=P1", patient) == 200
    assert _status(api_with_provider, "/fhir/Observation?patient=P2", patient) == 403
    backend = _rs256(_claims(client_id="ehr-7", scope="system/*.read"))
    assert _status(api_with_provider, "/fhir/CareTeam", backend) == 200
    assert _status(api_with_provider, "/fhir/Observation?patient=P1", backend) == 403


def test_forged_provider_tokens_are_refused(api_with_provider: str, seeded: Seeded) -> None:
    who = {"fhirUser": f"Practitioner/{seeded.member_a}"}
    public_pem = PROVIDER_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    forged = {
        "other key, same kid": _rs256(_claims(**who), key=OTHER_KEY),
        "unknown kid": _rs256(_claims(**who), kid="k9"),
        "wrong issuer": _rs256(_claims(**who, iss="https://evil.example")),
        "expired": _rs256(_claims(**who, exp=int(time.time()) - 3600)),
        "no scope": _rs256({k: v for k, v in _claims(**who).items() if k != "scope"}),
        "names nobody": _rs256(_claims(scope="user/*.read")),
    }
    # key confusion: HS256 with the provider's public key as the secret
    forged["HS256 with the public key"] = _hs256_with(public_pem, _claims(**who))
    for name, bearer in forged.items():
        assert _status(api_with_provider, "/fhir/Practitioner", bearer) == 401, name


def _hs256_with(secret: bytes, claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    signing = f"{part({'alg': 'HS256', 'typ': 'JWT', 'kid': 'k1'})}.{part(claims)}"
    mac = hmac.new(secret, signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")
