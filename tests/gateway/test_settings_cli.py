"""Settings fail at start-up naming the key; the CLI works on the hub database; i18n choices."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devices.reading import DeviceInfo
from gateway.errors import InvalidInputError, SettingsError, UnknownDeviceError
from gateway.i18n import choose_locale, choose_unit, tr
from gateway.quirks import profile_for
from gateway.registry import PairedDevice, Registry
from gateway.settings import load_settings, require_gateway_id

ROOT = Path(__file__).parents[2]
HOMEVITALS = str(Path(sys.executable).parent / "homevitals")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def no_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("HV_GATEWAY_"):
            monkeypatch.delenv(key)


def test_file_then_environment_then_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, 'gateway_id = "gw-home"\nmqtt_port = 1884\ntimezone = "Asia/Shanghai"\n')
    assert load_settings(path).mqtt_port == 1884
    monkeypatch.setenv("HV_GATEWAY_MQTT_PORT", "1885")
    assert load_settings(path).mqtt_port == 1885
    settings = load_settings(path, mqtt_port=1886)
    assert settings.mqtt_port == 1886
    assert settings.utc_offset_min(datetime(2026, 11, 27, tzinfo=UTC)) == 480
    assert settings.outbox_path == Path("/var/lib/homevitals/gateway/gateway.sqlite")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('gateway_id = "gw"\nmqtt_port = 70000\n', "mqtt_port"),
        ('gateway_id = "gw with space"\n', "gateway_id"),
        ('gateway_id = "gw"\ntimezone = "Mars/Olympus"\n', "timezone"),
        ('gateway_id = "gw"\nmqtt_prot = 1883\n', "mqtt_prot"),
        ('gateway_id = "gw"\nfailpoint = "somewhere"\n', "failpoint"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(write(tmp_path, text))
    assert info.value.key == key


def test_a_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "gateway_id = \n")
    with pytest.raises(SettingsError) as info:
        load_settings(path)
    assert info.value.key == str(path)


def test_cli_exits_2_naming_the_bad_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'gateway_id = "gw"\nmqtt_port = 0\n')
    done = subprocess.run(
        [HOMEVITALS, "gateway", "devices", "--settings", str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert "mqtt_port" in done.stderr


def test_cli_lists_and_unpairs_devices_from_the_hub_database(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'gateway_id = "gw"\ndata_dir = "{tmp_path / "data"}"\nble_transport = "virtual"\n',
    )
    registry = Registry(tmp_path / "data" / "gateway.sqlite")
    device = DeviceInfo("dev-1", "Acme", "GM-1", "SN1")
    registry.add(
        PairedDevice(device, "F1:00:00:00:00:09", "glucose", "patient-3", datetime.now(UTC))
    )
    registry.close()
    listed = subprocess.run(
        [HOMEVITALS, "gateway", "devices", "--settings", str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "dev-1" in listed.stdout and "patient-3" in listed.stdout
    assert "0 pending" in listed.stdout
    unknown = subprocess.run(
        [HOMEVITALS, "gateway", "unpair", "nope", "--settings", str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert unknown.returncode == 2 and "nope" in unknown.stderr


def test_registry_rejects_bad_input_and_unknown_devices(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "g.sqlite")
    device = DeviceInfo("dev-1")
    with pytest.raises(InvalidInputError) as info:
        registry.add(PairedDevice(device, "A", "glucose", "bad id", datetime.now(UTC)))
    assert info.value.field == "patient_id"
    with pytest.raises(InvalidInputError) as info:
        registry.add(PairedDevice(device, "A", "scale", "p-1", datetime.now(UTC)))
    assert info.value.field == "kind"
    with pytest.raises(UnknownDeviceError):
        registry.remove("dev-1", datetime.now(UTC))
    registry.add(PairedDevice(device, "aa:bb", "glucose", "p-1", datetime.now(UTC)))
    assert registry.by_address("AA:BB") is not None
    registry.close()


def test_language_and_unit_choice() -> None:
    assert choose_locale("zh-CN,zh;q=0.9,en;q=0.8", None) == "zh-CN"
    assert choose_locale("en;q=0.5,zh-TW;q=0.9", None) == "zh-CN"
    assert choose_locale("fr-FR", None) == "en"
    assert choose_locale("zh-CN", "en") == "en"
    assert choose_unit("zh-CN", None) == "mmol/L"
    assert choose_unit("en-US,en;q=0.9", None) == "mg/dL"
    assert choose_unit("en-GB", None) == "mmol/L"
    assert choose_unit("en-US", "mmol/L") == "mmol/L"
    assert (tr("en", "Pair"), tr("zh-CN", "Pair")) == ("Pair", "配对")


def test_quirk_profile_by_advertised_name() -> None:
    assert profile_for("BM590001") == "beurer-bm"
    assert profile_for("CareSens N") == "isens"
    assert profile_for("meter+123456") is None
    assert profile_for(None) is None


def test_a_hub_without_gateway_id_needs_enrolment(tmp_path: Path) -> None:
    path = write(tmp_path, f'data_dir = "{tmp_path / "hub"}"\nmqtt_port = 1883\n')
    settings = load_settings(path)  # loads: `homevitals gateway enrol` still has to run
    assert settings.gateway_id is None
    with pytest.raises(SettingsError) as caught:
        require_gateway_id(settings)
    assert caught.value.key == "gateway_id" and "gateway enrol" in str(caught.value)
