"""Issue 14 finding 4: settings refuse weak or placeholder secrets outside development."""

from __future__ import annotations

import pytest

from alerts.delivery.settings import ConfigError
from alerts.delivery.settings import load_settings as load_delivery
from ingest.errors import IngestConfigError
from ingest.secret_policy import url_password, weakness
from ingest.settings import load_settings as load_ingest

STRONG = "Zq4-mX8r2LwP0vKe7TnB"


@pytest.mark.parametrize(
    ("secret", "development", "why"),
    [
        ("", False, "is empty"),
        ("   ", True, "is empty"),
        ("changeme", True, "placeholder"),
        ("change-me-ingest-mqtt-password", False, "placeholder"),
        ("<your token>", True, "placeholder"),
        ("short-pw", False, "shorter than 16"),
        ("aaaaaaaaaaaaaaaaaaaa", False, "fewer than 8 different"),
        ("abababababababababab", False, "fewer than 8 different"),
    ],
)
def test_refused(secret: str, development: bool, why: str) -> None:
    reason = weakness(secret, development=development)
    assert reason is not None and why in reason


@pytest.mark.parametrize(("secret", "development"), [(STRONG, False), ("short-pw", True)])
def test_accepted(secret: str, development: bool) -> None:
    assert weakness(secret, development=development) is None


def test_url_password() -> None:
    assert url_password("postgresql+psycopg://hv:p%40ss@db:5432/hv") == "p@ss"
    assert url_password("postgresql+psycopg://postgres@127.0.0.1:5432/hv") is None
    assert url_password("sqlite:///homevitals.db") is None


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("HV_ENVIRONMENT", "HV_INGEST_DB_URL", "HV_DELIVERY_DATABASE_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"db_url": "postgresql+psycopg://hv:hunter2@db/hv"}, "HV_INGEST_DB_URL"),
        ({"mqtt_username": "ingest", "mqtt_password": "ingest123"}, "HV_INGEST_MQTT_PASSWORD"),
        (
            {"tsdb_url": "http://influxdb:8086", "tsdb_token": "change-me-influx-token"},
            "HV_INGEST_TSDB_TOKEN",
        ),
    ],
)
def test_ingest_refuses_weak_secrets_in_production(overrides: dict[str, str], key: str) -> None:
    with pytest.raises(IngestConfigError) as caught:
        load_ingest(**overrides)
    assert caught.value.key == key
    secret = next(iter(overrides.values())) if "db_url" in overrides else ""
    assert secret not in str(caught.value) or not secret  # the message never quotes the secret


def test_ingest_development_allows_short_but_not_placeholders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HV_ENVIRONMENT", "development")
    load_ingest(mqtt_username="ingest", mqtt_password="ingest123")
    with pytest.raises(IngestConfigError, match="placeholder"):
        load_ingest(mqtt_username="ingest", mqtt_password="changeme")


@pytest.mark.usefixtures("production")
def test_ingest_accepts_strong_secrets_and_passwordless_urls() -> None:
    load_ingest(
        db_url=f"postgresql+psycopg://hv:{STRONG}@db/hv", mqtt_username="i", mqtt_password=STRONG
    )
    load_ingest(db_url="postgresql+psycopg://postgres@127.0.0.1/hv")


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"database_url": "postgresql+psycopg://hv:hunter2@db/hv"}, "HV_DELIVERY_DATABASE_URL"),
        ({"ack_key": "change-me-to-32-random-bytes-please"}, "HV_DELIVERY_ACK_KEY"),
        (
            {"ack_base_url": "https://hv.example.org/ack", "ack_key": STRONG * 2},
            "HV_DELIVERY_ACK_BASE_URL",  # links would read .../ack/ack/<token>
        ),
    ],
)
def test_delivery_refuses_weak_secrets_and_a_doubled_ack_path(
    overrides: dict[str, str], key: str
) -> None:
    base = {
        "database_url": f"postgresql+psycopg://hv:{STRONG}@db/hv",
        "api_base_url": "https://hv.example.org/api",
    }
    with pytest.raises(ConfigError) as caught:
        load_delivery(**{**base, **overrides})
    assert caught.value.field == key
    assert "hunter2" not in str(caught.value)
    load_delivery(**base, ack_base_url="https://hv.example.org", ack_key=STRONG * 2)
