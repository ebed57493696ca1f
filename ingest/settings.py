"""Ingest settings, from the environment (prefix ``HV_INGEST_``) or keyword arguments.

Only the composition root (`ingest.__main__` / `ingest.cli`) builds them. `load_settings`
turns every problem into an `IngestConfigError` naming the environment variable to fix; secrets
(the database URL's password, the MQTT password, the time-series token) must not be empty,
placeholders or, outside development (`HV_ENVIRONMENT=development`), weak (`ingest.secret_policy`).
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.errors import IngestConfigError
from ingest.secret_policy import PLACEHOLDERS, is_development, url_password, weakness

PREFIX = "HV_INGEST_"

Failpoint = Literal["mid_batch", "before_commit", "after_commit", "mirror_after_write"]


IN_FLIGHT_BATCHES = 4  # batches of unacknowledged messages the broker may send ahead


class Settings(BaseSettings):
    """Everything ingest needs to run; defaults fit the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid", frozen=True)

    db_url: SecretStr = SecretStr("sqlite:///homevitals.db")
    migrate_on_start: bool = True

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    client_id: str = Field(default="ingest-1", min_length=1, max_length=64)
    share_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_expiry_s: int = Field(default=600, ge=1, le=0xFFFF_FFFF)
    keepalive_s: int = Field(default=30, ge=5, le=3600)

    # A batch is up to `batch_max_messages` MQTT messages or `batch_max_wait_ms` of waiting.
    # The broker's in-flight window (MQTT 5 Receive Maximum) is four times that: one batch
    # committing, one validated and waiting for the writer, and two arriving, so the validation
    # stage never waits for the broker to refill the window after an acknowledgement.
    batch_max_messages: int = Field(default=200, ge=1, le=32_000)
    batch_max_wait_ms: int = Field(default=20, ge=1, le=60_000)

    tsdb_url: str | None = None
    tsdb_token: SecretStr | None = None
    tsdb_org: str = "homevitals"
    tsdb_bucket: str = "homevitals"
    mirror_name: str = "tsdb"
    mirror_batch: int = Field(default=5000, ge=1, le=100_000)
    mirror_idle_ms: int = Field(default=200, ge=1, le=60_000)

    # Test-only switches: SIGKILL ourselves at a named point of the Nth batch, and the unsafe
    # order (acknowledge before commit) the test of the loss checker needs. Never in production.
    failpoint: Failpoint | None = None
    failpoint_batch: int = Field(default=1, ge=1)
    unsafe_ack_before_commit: bool = False

    @property
    def receive_maximum(self) -> int:
        """The MQTT 5 Receive Maximum sent on CONNECT (at most 65535)."""
        return min(IN_FLIGHT_BATCHES * self.batch_max_messages, 65_535)

    @property
    def subscription(self) -> str:
        """The shared subscription to reading batches all ingest replicas join."""
        return f"$share/{self.share_group}/hv/v1/gw/+/readings"

    @property
    def quarantine_subscription(self) -> str:
        """The shared subscription to the packets hubs forward from their own quarantine."""
        return f"$share/{self.share_group}/hv/v1/gw/+/quarantine"

    @property
    def samples_subscription(self) -> str:
        """The shared subscription (QoS 0) to hubs' raw-sample batches, taken only when a
        time-series server is configured (`ingest.samples`)."""
        return f"$share/{self.share_group}/hv/v1/gw/+/samples"

    @property
    def hub_subscriptions(self) -> tuple[str, str, str]:
        """The shared subscriptions to hubs' status (retained, last will), heartbeats and
        pairing events."""
        group = f"$share/{self.share_group}/hv/v1/gw/+"
        return f"{group}/status", f"{group}/heartbeat", f"{group}/pairings"


def _check_secret(
    key: str, value: SecretStr | None, *, required: bool, development: bool, in_url: bool = False
) -> None:
    if value is None:
        if required:
            raise IngestConfigError(PREFIX + key.upper(), "is required")
        return
    text = value.get_secret_value()
    if not text.strip():
        raise IngestConfigError(PREFIX + key.upper(), "is empty")
    if in_url:
        if text.strip().lower() in PLACEHOLDERS:
            raise IngestConfigError(PREFIX + key.upper(), "is still a placeholder value")
        password = url_password(text)
        if password is None:
            return  # SQLite, or peer/certificate authentication: no secret in the URL
        text = password
    reason = weakness(text, development=development)
    if reason is not None:
        raise IngestConfigError(PREFIX + key.upper(), reason)


def load_settings(**overrides: object) -> Settings:
    """Build and check the settings.

    Raises:
        IngestConfigError: naming the first missing, malformed or placeholder setting.
    """
    known = {PREFIX + name.upper() for name in Settings.model_fields}
    for key in sorted(os.environ):
        if key.upper().startswith(PREFIX) and key.upper() not in known:
            # A misspelt HV_INGEST_DB_URL must not silently fall back to the SQLite default.
            raise IngestConfigError(key, "is not a known setting")
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        key = PREFIX + str(error["loc"][0]).upper() if error["loc"] else PREFIX
        raise IngestConfigError(key, error["msg"]) from None
    development = is_development(os.environ.get("HV_ENVIRONMENT"))
    _check_secret("db_url", settings.db_url, required=True, development=development, in_url=True)
    _check_secret("mqtt_password", settings.mqtt_password, required=False, development=development)
    if settings.mqtt_password is not None and not settings.mqtt_username:
        raise IngestConfigError(PREFIX + "MQTT_USERNAME", "is required with a password")
    if settings.tsdb_url is not None:
        if settings.tsdb_url.startswith("file://"):
            if not settings.tsdb_url.startswith("file:///"):
                raise IngestConfigError(PREFIX + "TSDB_URL", "a file:// URL needs an absolute path")
            return settings  # a local line-protocol file: no server, no token
        if not settings.tsdb_url.startswith(("http://", "https://")):
            raise IngestConfigError(PREFIX + "TSDB_URL", "must be an http(s) or file:/// URL")
        _check_secret("tsdb_token", settings.tsdb_token, required=True, development=development)
    return settings
