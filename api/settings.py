"""API settings, from the environment (prefix ``HV_API_``) or keyword arguments.

Only the composition root (`api.cli`: ``homevitals api run`` and ``homevitals token issue``)
builds them. `load_settings` turns every problem into an `ApiConfigError` naming the variable.
The signing key (``HV_API_SIGNING_KEY``) needs 32 characters or more; outside development
(``HV_API_ENVIRONMENT=development``) a placeholder such as ``changeme...`` is refused.
"""

from __future__ import annotations

import os
import re
from typing import Final, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.errors import ApiConfigError
from api.tokens import TokenKey

PREFIX: Final = "HV_API_"
MIN_KEY_CHARS: Final = 32
# Words that mark a key someone forgot to replace (checked case-insensitively as substrings),
# and keys made of one repeated character.
_PLACEHOLDER_WORDS: Final = (
    "changeme",
    "change-me",
    "change_me",
    "placeholder",
    "example",
    "secret",
    "password",
    "xxxx",
    "dummy",
    "insecure",
    "replace",
)
_ONE_CHAR: Final = re.compile(r"^(.)\1*$")


class Settings(BaseSettings):
    """Everything the API and the token command need."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    signing_key: SecretStr
    environment: Literal["development", "production"] = "production"
    issuer: str = Field(default="homevitals", min_length=1, max_length=200)
    audience: str = Field(default="homevitals-api", min_length=1, max_length=200)
    # Per token: a burst of `rate_burst` requests, refilled at `rate_per_s`.
    rate_per_s: float = Field(default=10.0, gt=0, le=10_000)
    rate_burst: int = Field(default=100, ge=1, le=100_000)
    page_default: int = Field(default=50, ge=1, le=1000)
    page_max: int = Field(default=200, ge=1, le=1000)
    max_body_bytes: int = Field(default=65_536, ge=1024, le=10_000_000)
    # An identity provider's JWKS (https): its RS/ES/PS-signed tokens are taken beside the
    # deployment key's HS256 ones, with the same issuer and audience checks.
    jwks_url: str | None = None
    jwks_algorithms: str = "RS256 ES256"
    # The key of webhook acknowledgement links (the delivery worker's HV_DELIVERY_ACK_KEY): with
    # it, a webhook's `links.acknowledge` (HV_DELIVERY_ACK_BASE_URL pointing at this API's /v1)
    # takes a member's bearer token.
    ack_key: SecretStr | None = None
    # Development only: a code with which the dashboard's login page signs in any active
    # care-team member (the demo prints it). Refused outside development.
    dashboard_dev_code: SecretStr | None = None

    def token_key(self) -> TokenKey:
        """The key, issuer and audience tokens are signed and checked with."""
        return TokenKey(self.signing_key.get_secret_value().encode(), self.issuer, self.audience)


def is_placeholder(key: str) -> bool:
    """True for a key that is evidently not a real secret."""
    lowered = key.strip().lower()
    return bool(_ONE_CHAR.fullmatch(lowered)) or any(w in lowered for w in _PLACEHOLDER_WORDS)


def load_settings(**overrides: object) -> Settings:
    """Build and check the settings.

    Raises:
        ApiConfigError: naming the first variable that is missing, malformed, unknown (a
            misspelling) or a placeholder.
    """
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    known.add(PREFIX + "DB_URL")  # `homevitals api run --db` reads it (not a secret on argv)
    for name in sorted(os.environ):
        if name.upper().startswith(PREFIX) and name.upper() not in known:
            raise ApiConfigError(name, "is not a known setting")
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = PREFIX + str(error["loc"][0]).upper() if error["loc"] else PREFIX
        reason = "is required" if error["type"] == "missing" else str(error["msg"])
        raise ApiConfigError(field, reason) from None
    key = settings.signing_key.get_secret_value()
    if len(key) < MIN_KEY_CHARS:
        raise ApiConfigError(PREFIX + "SIGNING_KEY", f"needs at least {MIN_KEY_CHARS} characters")
    if settings.dashboard_dev_code is not None and settings.environment != "development":
        raise ApiConfigError(PREFIX + "DASHBOARD_DEV_CODE", "is allowed in development only")
    if settings.environment != "development" and is_placeholder(key):
        raise ApiConfigError(
            PREFIX + "SIGNING_KEY", "is a placeholder (allowed in development only)"
        )
    if settings.ack_key is not None:
        ack = settings.ack_key.get_secret_value()
        if len(ack.encode()) < MIN_KEY_CHARS or (
            settings.environment != "development" and is_placeholder(ack)
        ):
            raise ApiConfigError(PREFIX + "ACK_KEY", "needs at least 32 random bytes")
    if settings.jwks_url is not None:
        if not settings.jwks_url.startswith("https://") and settings.environment != "development":
            raise ApiConfigError(PREFIX + "JWKS_URL", "must be https:// outside development")
        allowed = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"}
        names = settings.jwks_algorithms.split()
        if not names or not set(names) <= allowed:
            raise ApiConfigError(PREFIX + "JWKS_ALGORITHMS", f"must name some of {sorted(allowed)}")
    if settings.page_default > settings.page_max:
        raise ApiConfigError(PREFIX + "PAGE_DEFAULT", "must not exceed HV_API_PAGE_MAX")
    return settings
