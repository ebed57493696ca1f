"""Bearer tokens: issue and verify the API's JWTs (PyJWT), time passed in.

A token names who is calling (`Principal`): a care-team member (``hv_actor: member``, ``sub`` the
member id), a patient (``patient``, ``sub`` and the SMART ``patient`` claim the patient id) or a
backend client (``system``, ``sub`` the client id), with SMART scopes in ``scope``. Tokens are
HS256 with the deployment's signing key; the algorithm is pinned, so ``alg: none`` and any other
algorithm are refused. Issuer and audience must match exactly; ``exp``, ``nbf`` and ``iat`` are
checked here against the `now` given (60 s leeway), not PyJWT's own clock.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

import jwt

from api.errors import TokenError, UnauthenticatedError
from api.scopes import Context, Scope, ScopeError, parse_scopes

ALGORITHM: Final = "HS256"
LEEWAY: Final = timedelta(seconds=60)
MAX_TTL: Final = timedelta(days=30)
MAX_TOKEN_CHARS: Final = 8192
_REQUIRED: Final = ("iss", "aud", "sub", "exp", "iat", "jti", "scope", "hv_actor")


class Actor(StrEnum):
    """Who a token speaks for; each may hold scopes of one SMART context only."""

    MEMBER = "member"
    PATIENT = "patient"
    SYSTEM = "system"

    @property
    def context(self) -> Context:
        """The SMART scope context this kind of caller uses."""
        return {"member": Context.USER, "patient": Context.PATIENT, "system": Context.SYSTEM}[
            self.value
        ]


@dataclass(frozen=True, slots=True)
class Principal:
    """A verified caller.

    Attributes:
        actor: member, patient or system client.
        subject: the member id, patient id or client id.
        scopes: the resource scopes of the token's own context.
        token_id: the ``jti`` (rate limits and the audit trail key on it).
    """

    actor: Actor
    subject: str
    scopes: tuple[Scope, ...]
    token_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class TokenKey:
    """The signing key with the issuer and audience tokens are bound to."""

    secret: bytes
    issuer: str
    audience: str


def issue(
    key: TokenKey,
    actor: Actor,
    subject: str,
    scope: str,
    *,
    now: datetime,
    ttl: timedelta,
    token_id: str | None = None,
) -> str:
    """Sign a token for `subject`.

    Raises:
        TokenError: a malformed scope, a scope of another context than the actor's
            (``user/`` scopes are for members), no resource scope at all, or a bad ttl.
    """
    if not timedelta(seconds=1) <= ttl <= MAX_TTL:
        raise TokenError(f"ttl must be between 1 s and {MAX_TTL.days} days")
    if not subject or len(subject) > 64:
        raise TokenError("the subject id must be 1-64 characters")
    try:
        scopes = parse_scopes(scope)
    except ScopeError as exc:
        raise TokenError(str(exc)) from exc
    if not scopes:
        raise TokenError("give at least one resource scope (user/Observation.read, ...)")
    for s in scopes:
        if s.context is not actor.context:
            raise TokenError(f"a {actor.value} token takes {actor.context.value}/ scopes only")
    claims: dict[str, object] = {
        "iss": key.issuer,
        "aud": key.audience,
        "sub": subject,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": token_id or str(uuid.uuid4()),
        "scope": " ".join(scope.split()),
        "hv_actor": actor.value,
    }
    if actor is Actor.PATIENT:
        claims["patient"] = subject  # the SMART launch-context claim
    return jwt.encode(claims, key.secret, algorithm=ALGORITHM)


@dataclass(frozen=True, slots=True)
class ProviderKey:
    """An identity provider's public key for one token (from its JWKS, by ``kid``).

    Attributes:
        key: the verification key (a `cryptography` public key).
        algorithms: the algorithms the deployment pins (``RS256``, ``ES256``...).
    """

    key: object
    algorithms: tuple[str, ...]


def header_algorithm(token: str) -> str:
    """The ``alg`` of a token's header, unverified (to choose the key).

    Raises:
        UnauthenticatedError: not a JWT.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise UnauthenticatedError("the token is too long")
    try:
        return str(jwt.get_unverified_header(token).get("alg"))
    except jwt.InvalidTokenError:
        raise UnauthenticatedError("the token is not a JWT") from None


def verify(
    token: str, key: TokenKey, *, now: datetime, provider: ProviderKey | None = None
) -> Principal:
    """Check a bearer token and return who it speaks for.

    Tokens signed with the deployment key (HS256, `issue`) carry ``hv_actor``; with `provider`,
    an identity provider's token (asymmetric algorithms only, so a public key can never serve
    as an HMAC secret) names its caller with ``hv_actor``, or ``fhirUser``
    (``Practitioner/{member}``, ``Patient/{patient}``), or the SMART ``patient`` claim, or,
    holding only ``system/`` scopes, its client (``client_id``/``azp``/``sub``).

    Raises:
        UnauthenticatedError: bad signature or algorithm, wrong issuer or audience, expired,
            not yet valid, a missing claim, or a malformed scope.
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise UnauthenticatedError("the token is too long")
    required = list(_REQUIRED) if provider is None else ["iss", "aud", "sub", "exp", "scope"]
    algorithms = (
        [ALGORITHM]
        if provider is None
        else [a for a in provider.algorithms if not a.startswith("HS")]
    )
    try:
        claims = jwt.decode(
            token,
            key.secret if provider is None else provider.key,  # type: ignore[arg-type]
            algorithms=algorithms,
            audience=key.audience,
            issuer=key.issuer,
            options={
                "require": required,
                "verify_exp": False,  # checked below against `now`
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise UnauthenticatedError(f"the token does not verify ({type(exc).__name__})") from None
    at = now.timestamp()
    slack = LEEWAY.total_seconds()
    exp = claims.get("exp")
    iat = claims.get("iat", exp if provider is not None else None)
    nbf = claims.get("nbf", iat)
    if not all(isinstance(v, int | float) for v in (exp, iat, nbf)):
        raise UnauthenticatedError("the token's times are malformed")
    assert isinstance(exp, int | float) and isinstance(iat, int | float)  # for mypy
    assert isinstance(nbf, int | float)
    if at > exp + slack:
        raise UnauthenticatedError("the token has expired")
    if provider is None and (at + slack < nbf or at + slack < iat):
        raise UnauthenticatedError("the token is not valid yet")
    if provider is not None and at + slack < nbf:
        raise UnauthenticatedError("the token is not valid yet")
    try:
        scopes = parse_scopes(str(claims["scope"]))
    except ScopeError:
        raise UnauthenticatedError("the token's scope is malformed") from None
    actor, subject = _caller(claims, scopes, provider is not None)
    jti = claims.get("jti")
    if provider is not None and jti is None:
        jti = hashlib.sha256(token.encode()).hexdigest()[:32]  # the rate limit's key
    if not subject or len(subject) > 64 or not isinstance(jti, str) or not jti:
        raise UnauthenticatedError("the token's subject or id is malformed")
    if actor is Actor.PATIENT and claims.get("patient", subject) != subject:
        raise UnauthenticatedError("a patient token's patient claim must name its subject")
    return Principal(
        actor=actor,
        subject=subject,
        scopes=tuple(s for s in scopes if s.context is actor.context),
        token_id=jti,
        expires_at=datetime.fromtimestamp(exp, UTC),
    )


_FHIR_USER: Final = {"Practitioner": Actor.MEMBER, "Patient": Actor.PATIENT}


def _caller(
    claims: dict[str, object], scopes: tuple[Scope, ...], from_provider: bool
) -> tuple[Actor, str]:
    """(actor, subject id) of a verified token's claims."""
    try:
        if "hv_actor" in claims:
            return Actor(str(claims["hv_actor"])), str(claims["sub"])
    except ValueError:
        raise UnauthenticatedError("the token's actor is malformed") from None
    if not from_provider:
        raise UnauthenticatedError("the token names no actor")
    fhir_user = claims.get("fhirUser")
    if isinstance(fhir_user, str):
        parts = fhir_user.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] in _FHIR_USER:
            return _FHIR_USER[parts[-2]], parts[-1]
        raise UnauthenticatedError("the token's fhirUser is neither a Practitioner nor a Patient")
    if isinstance(claims.get("patient"), str):
        return Actor.PATIENT, str(claims["patient"])
    if scopes and all(s.context is Context.SYSTEM for s in scopes):
        client = claims.get("client_id") or claims.get("azp") or claims.get("sub")
        return Actor.SYSTEM, str(client)
    raise UnauthenticatedError("the token names no member, patient or backend client")
