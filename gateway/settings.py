"""The gateway's settings: one pydantic-settings model, from a TOML file and the environment.

Precedence: explicit arguments, then `HV_GATEWAY_*` environment variables, then the TOML file.
Bad settings fail at start-up with `SettingsError` naming the key (`mqtt_port`, ...); unknown
keys in the file are errors too, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import contextvars
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from gateway.enrolment import load_identity
from gateway.errors import EnrolmentError, SettingsError
from gateway.failpoints import KNOWN as FAILPOINTS

_FILE_VALUES: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "gateway_settings_file", default=MappingProxyType({})
)
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]


class _FileSource(PydanticBaseSettingsSource):
    """Values read from the TOML file by `load_settings` (lowest precedence)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return _FILE_VALUES.get().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get())


class GatewaySettings(BaseSettings):
    """Everything the home hub needs; see README "gateway" for a sample file."""

    model_config = SettingsConfigDict(env_prefix="HV_GATEWAY_", extra="forbid", frozen=True)

    # None until the hub is enrolled (`homevitals gateway enrol CODE`): then the identity in
    # `data_dir` gives gateway_id, mqtt_username and mqtt_password (explicit values win).
    gateway_id: Identifier | None = None
    enrolment_url: str | None = None  # the server's enrolment endpoint (https in deployments)
    data_dir: Path = Path("/var/lib/homevitals/gateway")
    timezone: str = "UTC"
    locale: Literal["en", "zh-CN"] = "en"

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca: Path | None = None
    mqtt_tls_cert: Path | None = None
    mqtt_tls_key: Path | None = None
    mqtt_keepalive_s: int = Field(30, ge=2, le=3600)
    mqtt_session_expiry_s: int = Field(7 * 86400, ge=60)
    max_batch_bytes: int = Field(60_000, ge=2_000, le=256_000_000)
    resend_first_s: float = Field(30.0, gt=0)
    resend_max_s: float = Field(3600.0, gt=0)
    outbox_max_bytes: int | None = Field(None, ge=1_000_000)
    # Retired readings and forwarded quarantine packets are deleted this long after.
    outbox_retention_s: float = Field(7 * 86400.0, ge=3600)
    # The hub tells ingest it is alive, and when it last reached each device, this often.
    heartbeat_s: float = Field(300.0, ge=1)

    ble_transport: str = "platform"  # "platform" (BlueZ), "virtual", or a Bumble transport
    max_connections: int = Field(3, ge=1, le=200)  # BlueZ adapters hold ~7-10; virtual more
    max_streams: int = Field(4, ge=1, le=200)  # long-lived wearable links, besides those
    sample_retention_s: float = Field(86400.0, ge=0)  # raw stream samples kept on the hub
    forward_samples: bool = True  # raw samples to the time series (hv/v1/gw/{id}/samples)
    sample_resend_s: float = Field(60.0, gt=0)  # first resend of an unreceipted sample batch
    scan_s: float = Field(5.0, gt=0)
    meter_sync_interval_s: float = Field(300.0, ge=0)  # a meter that synced waits this long
    scan_idle_s: float = Field(2.0, ge=0)  # pause between scan rounds
    connect_attempts: int = Field(3, ge=1, le=10)
    connect_timeout_s: float = Field(20.0, gt=0)
    pace_s: float = Field(0.5, ge=0)
    operation_timeout_s: float = Field(30.0, gt=0)
    silence_timeout_s: float = Field(10.0, gt=0)
    clock_set_threshold_s: float = Field(120.0, ge=0)

    page_enabled: bool = True
    page_host: str = "127.0.0.1"
    page_port: int = Field(8080, ge=0, le=65535)
    # Beyond loopback the page asks for the hub PIN (`page_pin_path`, made at first start).
    page_allowed_hosts: tuple[str, ...] = ()  # host names it is opened under, e.g. "hub.local"
    page_tls_cert: Path | None = None
    page_tls_key: Path | None = None

    failpoint: str | None = None  # crash-safety tests only

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then environment, then the TOML file."""
        return (init_settings, env_settings, _FileSource(settings_cls))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("failpoint")
    @classmethod
    def _known_failpoint(cls, value: str | None) -> str | None:
        if value is not None and value not in FAILPOINTS:
            raise ValueError(f"must be one of {sorted(FAILPOINTS)}")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> GatewaySettings:
        if (self.page_tls_cert is None) != (self.page_tls_key is None):
            raise ValueError("page_tls_cert and page_tls_key go together")
        return self

    @property
    def page_pin_path(self) -> Path:
        """The hash of the pairing page's PIN (the PIN itself is shown once, never kept)."""
        return self.data_dir / "page-pin"

    @property
    def outbox_path(self) -> Path:
        """The SQLite file holding outbox, cursors, quarantine and the pairing registry."""
        return self.data_dir / "gateway.sqlite"

    @property
    def bonds_path(self) -> Path:
        """Where a Bumble transport keeps its bonds (so a restart asks no patient to re-pair)."""
        return self.data_dir / "bonds.json"

    def utc_offset_min(self, at: datetime) -> int:
        """The hub's local UTC offset at `at`, in minutes (DST-aware)."""
        offset = at.astimezone(ZoneInfo(self.timezone)).utcoffset()
        return 0 if offset is None else int(offset.total_seconds() // 60)


def with_identity(settings: GatewaySettings) -> GatewaySettings:
    """`settings` with gateway id and broker credentials from the hub's enrolment, where they
    are not set explicitly.

    Raises:
        SettingsError: the identity file is damaged (key ``identity``).
    """
    if settings.gateway_id is not None:
        return settings
    try:
        identity = load_identity(settings.data_dir)
    except EnrolmentError as exc:
        raise SettingsError("identity", str(exc)) from exc
    if identity is None:
        return settings
    update: dict[str, Any] = {"gateway_id": identity.gateway_id}
    if settings.mqtt_username is None:
        update["mqtt_username"] = identity.mqtt_username
    if settings.mqtt_password is None and identity.mqtt_password is not None:
        update["mqtt_password"] = SecretStr(identity.mqtt_password)
    return settings.model_copy(update=update)


def require_gateway_id(settings: GatewaySettings) -> str:
    """The hub's gateway id.

    Raises:
        SettingsError: not set and the hub is not enrolled (key ``gateway_id``).
    """
    if settings.gateway_id is None:
        raise SettingsError(
            "gateway_id",
            "not set and this hub is not enrolled: run `homevitals gateway enrol CODE` with the "
            "code your care team gave you (enrolment_url must be set)",
        )
    return settings.gateway_id


def load_settings(path: Path | None = None, **overrides: Any) -> GatewaySettings:
    """Read settings from `path` (TOML), the environment and `overrides`; an enrolled hub's
    identity fills in the gateway id and broker credentials.

    Raises:
        SettingsError: naming the first bad key (or the file, when it is not valid TOML).
    """
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(str(path), f"cannot read the settings file: {exc}") from exc
    token = _FILE_VALUES.set(values)
    try:
        return with_identity(GatewaySettings(**overrides))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "$"
        raise SettingsError(key, first["msg"]) from exc
    finally:
        _FILE_VALUES.reset(token)
