"""Settings: start-up fails naming the environment variable to fix."""

from __future__ import annotations

import pytest

from ingest.errors import IngestConfigError
from ingest.settings import load_settings


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings()
    assert settings.db_url.get_secret_value().startswith("sqlite:///")
    assert settings.subscription == "$share/ingest/hv/v1/gw/+/readings"
    assert settings.receive_maximum == 4 * settings.batch_max_messages
    assert settings.failpoint is None and settings.unsafe_ack_before_commit is False


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HV_INGEST_MQTT_PORT", "18830")
    monkeypatch.setenv("HV_INGEST_SHARE_GROUP", "g2")
    settings = load_settings()
    assert settings.mqtt_port == 18830
    assert settings.subscription.startswith("$share/g2/")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"mqtt_port": 0}, "HV_INGEST_MQTT_PORT"),
        ({"db_url": "  "}, "HV_INGEST_DB_URL"),
        ({"mqtt_username": "ingest", "mqtt_password": "changeme"}, "HV_INGEST_MQTT_PASSWORD"),
        ({"mqtt_password": "s3cr3t-long-enough-9"}, "HV_INGEST_MQTT_USERNAME"),
        ({"tsdb_url": "http://127.0.0.1:8428"}, "HV_INGEST_TSDB_TOKEN"),
        ({"tsdb_url": "ftp://x", "tsdb_token": "t0ken"}, "HV_INGEST_TSDB_URL"),
        ({"share_group": "a/b"}, "HV_INGEST_SHARE_GROUP"),
        ({"failpoint": "somewhere"}, "HV_INGEST_FAILPOINT"),
    ],
)
def test_bad_settings_name_the_variable(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(IngestConfigError) as caught:
        load_settings(**overrides)
    assert caught.value.key == key


def test_secrets_are_not_printed() -> None:
    settings = load_settings(mqtt_username="ingest", mqtt_password="s3cr3t-long-enough-9")
    assert "s3cr3t-long-enough-9" not in repr(settings)


def test_a_misspelt_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HV_INGEST_DB_ULR", "postgresql+psycopg://db/hv")
    with pytest.raises(IngestConfigError) as caught:
        load_settings()
    assert caught.value.key == "HV_INGEST_DB_ULR"
