"""Delivery settings, from the environment (prefix ``HV_DELIVERY_``) or keyword arguments.

Only the composition roots (`python -m alerts.delivery`, the `homevitals webhook` CLI) build
them. `load_settings` turns every problem into a `ConfigError` naming the variable to fix.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from alerts.delivery.errors import InvalidFieldError
from alerts.delivery.escalation import EscalationPolicy
from alerts.delivery.payload import LinkConfig
from alerts.delivery.special_addresses import IPNetwork, NetworkListError, parse_allow_networks
from alerts.delivery.ssrf import SsrfPolicy
from alerts.delivery.worker import WorkerConfig
from careteam.errors import SecretsError
from careteam.secrets import SecretBox
from ingest.secret_policy import PLACEHOLDERS, is_development, url_password, weakness

PREFIX = "HV_DELIVERY_"
FAILPOINT = re.compile(r"^kill_after_response:[1-9][0-9]*$")


class ConfigError(InvalidFieldError):
    """A setting is missing, malformed or a placeholder; `field` is the environment variable."""


class Settings(BaseSettings):
    """Everything the delivery worker and the acknowledgement app need."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    database_url: SecretStr
    api_base_url: str = Field(min_length=1)
    ack_base_url: str | None = None
    ack_key: SecretStr | None = None
    # Development and test flag (docs/threat-model.md, webhooks), never set in a deployment.
    allow_loopback_receivers: bool = False
    # Private networks (comma-separated CIDRs inside 10/8, 172.16/12, 192.168/16, fc00::/7)
    # whose receivers are allowed, e.g. a hospital intranet. Off by default; every use is audited.
    allow_cidrs: str = ""
    timeout_s: float = Field(default=15.0, gt=0, le=60)
    lease_s: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=20, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=64)
    # Idle poll without notifications (SQLite). On PostgreSQL the worker is woken by the
    # commit of new deliveries and polls only every `notify_fallback_s` (and when a retry is due).
    poll_interval_s: float = Field(default=0.5, gt=0, le=60)
    notify_fallback_s: float = Field(default=5.0, gt=0, le=300)
    ack_timeout_s: float = Field(default=900.0, gt=0)
    failing_alarm_after_s: float = Field(default=900.0, gt=0)
    # Test-only: SIGKILL the worker after its Nth HTTP response, before recording it.
    failpoint: str | None = None
    # Keys that seal webhook signing secrets at rest (careteam.secrets), shared by every process
    # that registers endpoints or signs: one name, without the HV_DELIVERY_ prefix.
    secrets_keys: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("HV_SECRETS_KEYS", "secrets_keys")
    )

    def secret_box(self) -> SecretBox:
        """The sealing keys.

        Raises:
            ConfigError: ``HV_SECRETS_KEYS`` is missing or malformed.
        """
        return secret_box(self.secrets_keys.get_secret_value() if self.secrets_keys else None)

    def allow_networks(self) -> tuple[IPNetwork, ...]:
        """The allow-listed private networks (checked by `load_settings`)."""
        return parse_allow_networks(self.allow_cidrs.split(","))

    def worker_config(self) -> WorkerConfig:
        """The worker's configuration.

        Raises:
            ConfigError: ``HV_SECRETS_KEYS`` is missing or malformed.
        """
        key = self.ack_key.get_secret_value().encode() if self.ack_key else None
        return WorkerConfig(
            links=LinkConfig(self.api_base_url, self.ack_base_url, key),
            secrets=self.secret_box(),
            policy=SsrfPolicy(
                allow_loopback=self.allow_loopback_receivers,
                allow_networks=self.allow_networks(),
            ),
            escalation=EscalationPolicy(ack_timeout=timedelta(seconds=self.ack_timeout_s)),
            timeout_s=self.timeout_s,
            lease_s=max(self.lease_s, self.timeout_s * 2),
            batch_size=self.batch_size,
            concurrency=self.concurrency,
            failing_alarm_after=timedelta(seconds=self.failing_alarm_after_s),
        )


def secret_box(setting: str | None) -> SecretBox:
    """The sealing keys from the value of ``HV_SECRETS_KEYS``.

    Raises:
        ConfigError: missing or malformed (field ``"HV_SECRETS_KEYS"``).
    """
    if not setting:
        raise ConfigError(
            "HV_SECRETS_KEYS", "is required (make one: homevitals webhook new-secrets-key)"
        )
    try:
        return SecretBox.from_setting(setting)
    except SecretsError as exc:
        raise ConfigError("HV_SECRETS_KEYS", str(exc)) from exc


def load_settings(**overrides: object) -> Settings:
    """Build and check the settings.

    Raises:
        ConfigError: naming the first variable that is missing, malformed or a placeholder.
    """
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = PREFIX + str(first["loc"][0]).upper() if first["loc"] else PREFIX
        raise ConfigError(name, str(first["msg"])) from exc
    development = is_development(os.environ.get("HV_ENVIRONMENT"))
    url = settings.database_url.get_secret_value()
    if url.strip().lower() in PLACEHOLDERS:
        raise ConfigError(PREFIX + "DATABASE_URL", "is still a placeholder value")
    password = url_password(url)
    reason = None if password is None else weakness(password, development=development)
    if reason is not None:
        raise ConfigError(PREFIX + "DATABASE_URL", f"password {reason}")
    if settings.ack_key is not None:
        key = settings.ack_key.get_secret_value()
        reason = weakness(key, development=development)
        if reason is not None:
            raise ConfigError(PREFIX + "ACK_KEY", reason)
    if settings.ack_base_url is not None:
        key = settings.ack_key.get_secret_value() if settings.ack_key else ""
        if len(key.encode()) < 32 or key.strip().lower() in PLACEHOLDERS:
            raise ConfigError(
                PREFIX + "ACK_KEY", "needs at least 32 random bytes with ACK_BASE_URL"
            )
        if settings.ack_base_url.rstrip("/").endswith("/ack"):
            raise ConfigError(
                PREFIX + "ACK_BASE_URL", "is the site root the links go under, without /ack"
            )
    try:
        settings.allow_networks()
    except NetworkListError as exc:
        raise ConfigError(PREFIX + "ALLOW_CIDRS", str(exc)) from exc
    if settings.failpoint is not None and not FAILPOINT.match(settings.failpoint):
        raise ConfigError(PREFIX + "FAILPOINT", "must be kill_after_response:<n>")
    if not settings.allow_loopback_receivers and not settings.api_base_url.startswith("https://"):
        raise ConfigError(PREFIX + "API_BASE_URL", "must be https:// outside development")
    return settings
