"""A hub enrols end to end: the care team makes a code (`homevitals patient enrol-code`), the
hub redeems it over HTTP at the enrolment endpoint (`homevitals gateway enrol CODE`), keeps its
identity (mode 0600), and its settings then carry the gateway id and broker password that
the shipped broker's password listener (8884, TLS, acl-gateways; the server writes its
password file) accepts on Debian's Mosquitto. A code made for
the hub adds a patient; every refusal looks the same; too many attempts are answered 429."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from careteam.broker import MosquittoPasswordFile, sighup_pid
from careteam.cli import patient_app
from careteam.enrol_app import create_app
from careteam.enrolment import AttemptPolicy
from gateway.cli import app as gateway_app
from gateway.enrolment import identity_path, load_identity
from gateway.settings import load_settings
from tests.alerts.delivery.receiver import UvicornThread
from tests.careteam.conftest import T0
from tests.careteam.test_enrolment import _Hub, broker
from tests.support.broker_config import ShippedBroker
from tests.support.record import ensure_patient


def test_a_hub_enrols_with_a_code_and_connects(
    pg: sa.Engine, pg_url: str, broker: ShippedBroker, tmp_path: Path
) -> None:
    assert broker.process is not None and broker.process.proc is not None
    passwd = broker.config_dir / "passwd-gateways"  # the shipped gateway listener's (8884)
    accounts = MosquittoPasswordFile(passwd, sighup_pid(broker.process.proc.pid))
    with pg.begin() as conn:
        ensure_patient(conn, "p-wang", T0)
        ensure_patient(conn, "p-li", T0)
    runner = CliRunner()
    made = runner.invoke(patient_app, ["enrol-code", "p-wang", "--db", pg_url])
    assert made.exit_code == 0, made.stderr
    code = json.loads(made.stdout)["code"]
    server = UvicornThread(
        create_app(pg, accounts, lambda: T0, AttemptPolicy(max_failures_per_source=3))
    )
    server.start()
    data_dir = tmp_path / "hub"
    settings_file = tmp_path / "gateway.toml"
    settings_file.write_text(
        f'data_dir = "{data_dir}"\nenrolment_url = "http://127.0.0.1:{server.port}"\n'
        f"mqtt_port = {broker.ports[8884]}\n"
    )
    hub: _Hub | None = None
    try:
        typed = code.lower().replace("-", " ")  # as a patient might type it
        enrolled = runner.invoke(gateway_app, ["enrol", typed, "--settings", str(settings_file)])
        assert enrolled.exit_code == 0, enrolled.stderr
        identity = load_identity(data_dir)
        assert identity is not None and enrolled.stdout.startswith(
            f"enrolled as {identity.gateway_id}"
        )
        assert [p.short_name for p in identity.patients] == ["P. P."]
        assert stat.S_IMODE(identity_path(data_dir).stat().st_mode) == 0o600
        settings = load_settings(settings_file)
        assert settings.gateway_id == identity.gateway_id
        assert settings.mqtt_password is not None
        password = settings.mqtt_password.get_secret_value()
        hub = _Hub(broker.ports[8884], identity.mqtt_username, password, broker.ca)
        assert hub.connected.wait(10)

        # The same code again, an unknown one: the same refusal, and the CLI says so.
        again = runner.invoke(gateway_app, ["enrol", code, "--settings", str(settings_file)])
        assert again.exit_code == 2 and "not accepted" in again.stderr
        # A second patient: a code made for this hub adds them (no new credentials).
        more = runner.invoke(
            patient_app,
            ["enrol-code", "p-li", "--gateway", identity.gateway_id, "--db", pg_url],
        )
        added = runner.invoke(
            gateway_app,
            ["enrol", json.loads(more.stdout)["code"], "--settings", str(settings_file)],
        )
        assert added.exit_code == 0, added.stderr
        after = load_identity(data_dir)
        assert after is not None and after.gateway_id == identity.gateway_id
        assert after.mqtt_password == identity.mqtt_password
        assert sorted(p.patient_id for p in after.patients) == ["p-li", "p-wang"]

        url = f"http://127.0.0.1:{server.port}/v1/enrol"
        refusals = [httpx.post(url, json={"code": c}) for c in ("ZZZZZ-ZZZZZ", "nonsense")]
        assert {(r.status_code, r.content) for r in refusals} == {
            (403, b'{"detail":"invalid_code"}')
        }
        limited = httpx.post(url, json={"code": code})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    finally:
        if hub is not None:
            hub.close()
        server.stop()


__all__ = ["broker"]
