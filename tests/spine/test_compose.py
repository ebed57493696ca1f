"""docker-compose.yml as users run it (issue 13 "Deployment that comes up", issue 14 finding 4).

Checked with Debian's `docker-compose config` (no engine): the rendered services' argv holds no
secret, each secret reaches only its own services, infrastructure is healthy before the
migration step and the services, the services' settings accept what compose gives them (and
refuse the placeholders of .env.example), the broker mounts the tested files. The PostgreSQL
init script and every pipeline-dashboard query run on Debian's PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from alerts.delivery.payload import LinkConfig
from alerts.delivery.settings import ConfigError
from alerts.delivery.settings import load_settings as load_delivery
from api.settings import load_settings as load_api
from careteam import audit_store
from careteam.audit import Actor
from ingest.errors import IngestConfigError
from ingest.settings import load_settings as load_ingest
from tests.support.broker_config import ACL_FILES, MOUNTS
from tests.support.servers import VICTORIA_METRICS_DEDUP, PostgresServer

ROOT = Path(__file__).parents[2]
# Distinct, strong values, so each one can be traced to where it lands.
ENV = {
    "HV_POSTGRES_PASSWORD": "pg-superuser-Secret-0001",
    "HV_DB_OWNER_PASSWORD": "owner-role-Secret-0002-xyz",
    "HV_DB_INGEST_PASSWORD": "ingest-role-Secret-0012-xyz",
    "HV_DB_ALERTS_PASSWORD": "alerts-role-Secret-0013-xyz",
    "HV_DB_DELIVERY_PASSWORD": "delivery-role-Secret-0014-xyz",
    "HV_DB_API_PASSWORD": "api-role-Secret-0015-xyz",
    "HV_GRAFANA_DB_PASSWORD": "grafana-db-Secret-0003",
    "HV_INFLUX_PASSWORD": "influx-admin-Secret-0004",
    "HV_INFLUX_TOKEN": "influx-admin-token-Secret-0005",
    "HV_INGEST_INFLUX_TOKEN": "influx-ingest-token-Secret-0006",
    "HV_GRAFANA_INFLUX_TOKEN": "influx-grafana-token-Secret-0007",
    "HV_GRAFANA_ADMIN_PASSWORD": "grafana-admin-Secret-0008",
    "HV_INGEST_MQTT_PASSWORD": "mqtt-ingest-Secret-0009",
    "HV_ACK_KEY": "ack-key-Secret-0010-0123456789abcdefghij",
    "HV_API_SIGNING_KEY": "api-signing-Key-0011-0123456789abcdefgh",
    "HV_PUBLIC_URL": "https://homevitals.example.org",
    "HV_SECRETS_KEYS": "k1:" + "A" * 43,
}
# Which services may see each secret.
OWNERS = {
    "HV_POSTGRES_PASSWORD": {"postgres"},
    "HV_DB_OWNER_PASSWORD": {"postgres", "migrate"},
    "HV_DB_INGEST_PASSWORD": {"postgres", "ingest"},
    "HV_DB_ALERTS_PASSWORD": {"postgres", "alerts"},
    "HV_DB_DELIVERY_PASSWORD": {"postgres", "delivery", "ack"},
    "HV_DB_API_PASSWORD": {"postgres", "api"},
    "HV_GRAFANA_DB_PASSWORD": {"postgres", "grafana"},
    "HV_INFLUX_PASSWORD": {"influxdb"},
    "HV_INFLUX_TOKEN": {"influxdb"},
    "HV_INGEST_INFLUX_TOKEN": {"ingest"},
    "HV_GRAFANA_INFLUX_TOKEN": {"grafana"},
    "HV_GRAFANA_ADMIN_PASSWORD": {"grafana"},
    "HV_INGEST_MQTT_PASSWORD": {"ingest"},
    "HV_ACK_KEY": {"delivery", "ack"},
    "HV_API_SIGNING_KEY": {"api"},
    "HV_SECRETS_KEYS": {"delivery"},
}
APP_SERVICES = {"ingest", "alerts", "delivery", "ack", "api"}
IMAGE_ENTRYPOINT = ["homevitals"]  # Dockerfile ENTRYPOINT of the homevitals image


def _compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI=true (scripts/install-system-deps.sh)")
        pytest.skip("docker-compose not installed")
    return subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), *args],
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **env},
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, object]]:
    done = _compose("config", env=ENV)
    assert done.returncode == 0, done.stderr
    services: dict[str, dict[str, object]] = yaml.safe_load(done.stdout)["services"]
    return services


def _argv(service: dict[str, object]) -> list[str]:
    command = service.get("command") or []
    assert isinstance(command, list), "commands are exec-form lists, never shell strings"
    entrypoint = service.get("entrypoint") or (
        IMAGE_ENTRYPOINT if service.get("image") == "homevitals:latest" else []
    )
    assert isinstance(entrypoint, list)
    return [str(word) for word in [*entrypoint, *command]]


def _healthcheck_argv(service: dict[str, object]) -> list[str]:
    check = service.get("healthcheck")
    return [str(word) for word in check["test"]] if isinstance(check, dict) else []


def test_every_service_is_there(rendered: dict[str, dict[str, object]]) -> None:
    assert set(rendered) == {
        "mosquitto", "postgres", "influxdb", "victoria-metrics", "grafana", "migrate",
        *APP_SERVICES,
    }  # fmt: skip


def test_no_secret_on_any_command_line(rendered: dict[str, dict[str, object]]) -> None:
    # /proc/<pid>/cmdline is readable by every user; docker inspect shows it too.
    for name, service in rendered.items():
        words = " ".join(_argv(service) + _healthcheck_argv(service))
        for key, value in ENV.items():
            if key in OWNERS:
                assert value not in words, f"{key} on the command line of {name}"
        assert "postgresql" not in words and "password" not in words.lower(), name
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, service in raw.items():
        assert "${" not in str(service.get("command", "")), name


def test_each_secret_reaches_only_its_services(rendered: dict[str, dict[str, object]]) -> None:
    assert len(set(ENV.values())) == len(ENV)
    for key, owners in OWNERS.items():
        seen = {
            name
            for name, service in rendered.items()
            if any(ENV[key] in str(v) for v in dict(service.get("environment") or {}).values())
        }
        assert seen == owners, key


def test_compose_refuses_to_render_without_each_required_secret() -> None:
    optional = {"HV_INGEST_INFLUX_TOKEN", "HV_GRAFANA_INFLUX_TOKEN"}  # made after first start
    for key in sorted(set(ENV) - optional):
        done = _compose("config", env={k: v for k, v in ENV.items() if k != key})
        assert done.returncode != 0, key
        assert key in done.stderr


def test_infrastructure_is_healthy_before_the_migration_and_the_services(
    rendered: dict[str, dict[str, object]],
) -> None:
    for name in ("mosquitto", "postgres", "influxdb"):
        assert _healthcheck_argv(rendered[name]), f"{name} has no healthcheck"

    def depends(name: str) -> dict[str, str]:
        deps = rendered[name].get("depends_on") or {}
        assert isinstance(deps, dict)
        return {dep: spec["condition"] for dep, spec in deps.items()}

    assert depends("migrate") == {"postgres": "service_healthy"}
    assert _argv(rendered["migrate"]) == ["homevitals", "migrate"]
    assert rendered["migrate"]["restart"] == "no"
    for name in APP_SERVICES:
        deps = depends(name)
        assert deps["postgres"] == "service_healthy"
        assert deps["migrate"] == "service_completed_successfully"
    assert depends("ingest")["mosquitto"] == depends("ingest")["influxdb"] == "service_healthy"
    assert rendered["ingest"]["environment"]["HV_INGEST_MIGRATE_ON_START"] == "false"  # type: ignore[index]


def _environment(service: dict[str, object]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def test_the_services_accept_their_rendered_settings(
    rendered: dict[str, dict[str, object]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith(("HV_INGEST_", "HV_DELIVERY_", "HV_ENV"))]:
        monkeypatch.delenv(key)
    for key in [k for k in os.environ if k.startswith("HV_API_")]:
        monkeypatch.delenv(key)
    for key, value in _environment(rendered["ingest"]).items():
        monkeypatch.setenv(key, value)
    assert load_ingest().tsdb_token is not None  # production mode: strong secrets pass
    loaded = {}
    for name in ("delivery", "ack"):
        with monkeypatch.context() as scoped:
            for key, value in _environment(rendered[name]).items():
                scoped.setenv(key, value)
            loaded[name] = load_delivery()
    with monkeypatch.context() as scoped:
        for key, value in _environment(rendered["api"]).items():
            scoped.setenv(key, value)
        assert load_api().environment == "production"
    # The acknowledgement link has one /ack/ (it read .../ack/ack/<token> before).
    links = loaded["delivery"].worker_config().links
    assert isinstance(links, LinkConfig) and links.ack_base_url == ENV["HV_PUBLIC_URL"]


def test_the_example_env_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    done = _compose("config", env={**example, "HV_INGEST_INFLUX_TOKEN": "change-me-token"})
    assert done.returncode == 0, done.stderr  # it renders; the services then refuse it
    services = yaml.safe_load(done.stdout)["services"]
    for key in [k for k in os.environ if k.startswith(("HV_INGEST_", "HV_DELIVERY_", "HV_ENV"))]:
        monkeypatch.delenv(key)
    with monkeypatch.context() as scoped:
        for key, value in _environment(services["ingest"]).items():
            scoped.setenv(key, value)
        with pytest.raises(IngestConfigError, match="placeholder"):
            load_ingest()
    with monkeypatch.context() as scoped:
        for key, value in _environment(services["delivery"]).items():
            scoped.setenv(key, value)
        with pytest.raises(ConfigError, match="placeholder"):
            load_delivery()


def test_env_example_names_every_variable() -> None:
    used = set(re.findall(r"\$\{(HV_[A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    used |= set(re.findall(r"env_value (HV_[A-Z0-9_]+)", (ROOT / "deploy/init.sh").read_text()))
    example = set(re.findall(r"^(HV_[A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used == example
    assert set(ENV) <= example


def test_shipped_config_never_allows_loopback_webhooks() -> None:
    # The test-only flag for loopback receivers (docs/threat-model.md, webhooks) stays off in
    # what we ship.
    text = (ROOT / "docker-compose.yml").read_text()
    assert "ALLOW_LOOPBACK" not in text.upper()


def test_compose_mounts_the_tested_broker_files() -> None:
    # The broker runs exactly the files tests/spine/test_broker_config.py runs.
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {}
    for volume in config["services"]["mosquitto"]["volumes"]:
        host, container, *mode = volume.split(":")
        if host.startswith("./"):
            assert mode == ["ro"], volume
            mounts[host] = container
    assert mounts == MOUNTS
    for host in MOUNTS:
        name = host.removeprefix("./deploy/mosquitto/")
        if name in ("mosquitto.conf", *ACL_FILES):
            assert (ROOT / host).is_file(), host  # shipped; passwd-* and certs/ from init.sh


# --- PostgreSQL roles and the Grafana dashboards -----------------------------------------------


SERVICE_ROLES = {
    "hv_ingest": "HV_DB_INGEST_PASSWORD",
    "hv_alerts": "HV_DB_ALERTS_PASSWORD",
    "hv_delivery": "HV_DB_DELIVERY_PASSWORD",
    "hv_api": "HV_DB_API_PASSWORD",
}
ROLES = ("hv_owner", *SERVICE_ROLES, "hv_services", "grafana_reader")


@pytest.fixture
def roles_db(postgres: PostgresServer) -> Iterator[dict[str, str]]:
    """A database initialised as the postgres image would: the shipped roles script run once.

    Yields each role's URL. (The suite's server trusts local connections, so this shows what
    each role may do, not that its password is checked.)
    """
    name = "hv_compose_roles"
    admin = sa.create_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    postgres.create_database(name)
    passwords = {k: v for k, v in ENV.items() if k.startswith("HV_DB_") or "GRAFANA_DB" in k}
    done = subprocess.run(
        ["sh", str(ROOT / "deploy/postgres/10-homevitals-roles.sh")],
        env={
            "PATH": os.environ["PATH"] + ":" + str(Path(postgres._bin("psql")).parent),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(postgres.port),
            "POSTGRES_USER": "postgres",
            "POSTGRES_DB": name,
            **passwords,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert done.returncode == 0, done.stderr
        base = f"postgresql+psycopg://{{}}@127.0.0.1:{postgres.port}/{name}"
        yield {role: base.format(role) for role in ROLES}
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            for role in ROLES:
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def _expand_grafana_macros(sql: str) -> str:
    return re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '1 day' AND now()", sql)


def _migrate(url: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "homevitals"), "migrate"],
        env={**os.environ, "HV_MIGRATE_DB_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines[:4]] == [
        "careteam:", "ingest:", "alerts:", "delivery:",
    ], done.stdout  # fmt: skip
    assert lines[4:] == ["audit_log: append-only for the service roles"]


def test_migration_step_and_dashboards_on_the_shipped_roles(roles_db: dict[str, str]) -> None:
    _migrate(roles_db["hv_owner"])
    queries = [
        target["rawSql"]
        for panel in _dashboard("pipeline-health.json")["panels"]
        for target in panel["targets"]
    ]
    assert queries
    reader = sa.create_engine(roles_db["grafana_reader"])
    try:
        with reader.connect() as conn:
            for sql in queries:
                conn.execute(sa.text(_expand_grafana_macros(sql))).all()
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                conn.execute(sa.text("DELETE FROM readings"))
    finally:
        reader.dispose()


def test_each_service_role_writes_rows_and_changes_no_table(roles_db: dict[str, str]) -> None:
    _migrate(roles_db["hv_owner"])
    for role in SERVICE_ROLES:
        engine = sa.create_engine(roles_db[role])
        try:
            with engine.begin() as conn:  # rows: read, insert (its identity sequence), delete
                conn.execute(sa.text("SELECT count(*) FROM readings")).scalar_one()
                conn.execute(
                    sa.text("INSERT INTO mirror_cursors (name, last_id, updated_at) "
                            "VALUES (:n, 0, now())"),
                    {"n": role},
                )  # fmt: skip
                conn.execute(sa.text("DELETE FROM mirror_cursors WHERE name = :n"), {"n": role})
            for ddl in ("CREATE TABLE intruder (x int)", "DROP TABLE readings",
                        "ALTER TABLE readings ADD COLUMN x int",
                        # the audit trail: appended to, never changed
                        "UPDATE audit_log SET detail = detail", "DELETE FROM audit_log",
                        "TRUNCATE audit_log"):  # fmt: skip
                with (
                    engine.connect() as conn,
                    pytest.raises(
                        sa.exc.ProgrammingError, match=r"permission denied|must be owner"
                    ),
                ):
                    conn.execute(sa.text(ddl))
        finally:
            engine.dispose()
    # A service appends to the audit trail (delivery records disclosures there).
    delivery = sa.create_engine(roles_db["hv_delivery"])
    try:
        with delivery.begin() as conn:
            actor = Actor("system", "webhook-delivery")
            at = datetime.now(UTC)
            audit_store.append(conn, audit_store.record(actor, "delivery.cancel"), at)
        with delivery.connect() as conn:
            assert audit_store.verify(conn).ok
    finally:
        delivery.dispose()
    # The rules engine's real start path (it checks its migrations are at head) as hv_alerts.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "homevitals"), "alerts", "run", "--once"],
        env={**os.environ, "HV_ALERTS_DB_URL": roles_db["hv_alerts"]},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _dashboard(name: str) -> dict[str, object]:
    import json

    data: dict[str, object] = json.loads((ROOT / "deploy/grafana/dashboards" / name).read_text())
    return data


def test_grafana_is_provisioned_with_its_data_sources_and_dashboards(
    rendered: dict[str, dict[str, object]],
) -> None:
    grafana = ROOT / "deploy/grafana"
    sources = yaml.safe_load((grafana / "provisioning/datasources/homevitals.yaml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    assert uids == {"hv-influxdb", "hv-postgres"}
    env = _environment(rendered["grafana"])
    for source in sources["datasources"]:
        for value in source.get("secureJsonData", {}).values():
            assert value.startswith("$") and value[1:] in env  # from the service's environment
    providers = yaml.safe_load((grafana / "provisioning/dashboards/homevitals.yaml").read_text())
    (provider,) = providers["providers"]
    volumes = {v.split(":")[1] for v in rendered["grafana"]["volumes"] if isinstance(v, str)}  # type: ignore[union-attr]
    volumes |= {
        v["target"]
        for v in rendered["grafana"]["volumes"]
        if isinstance(v, dict)  # type: ignore[union-attr]
    }
    assert provider["options"]["path"] in volumes
    assert "/etc/grafana/provisioning" in volumes
    fields = {"systolic_mmhg", "diastolic_mmhg", "pulse_per_min", "glucose_mmol_l"}
    titles = []
    for name in ("readings.json", "pipeline-health.json"):
        board = _dashboard(name)
        titles.append(board["title"])
        panels = board["panels"]
        assert isinstance(panels, list) and len(panels) >= 3
        for panel in panels:
            for target in panel["targets"]:
                assert target["datasource"]["uid"] in uids
                text = target.get("query") or target.get("rawSql")
                assert text, panel["title"]
                for field in re.findall(r'r\._field == "(\w+)"', text):
                    assert field in fields
                for kind in re.findall(r'r\._measurement == "(\w+)"', text):
                    assert kind in {"glucose", "blood_pressure"}
    assert titles == ["homevitals: readings", "homevitals: pipeline health"]


def test_shipped_victoria_metrics_deduplicates_like_the_suites_server() -> None:
    # The mirror may write a batch twice (crash between the server's 2xx and the cursor
    # commit): the shipped server must drop the repeat as the tested one does
    # (tests/ingest/test_faults.py, the SIGKILL between mirror write and cursor commit).
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = config["services"]["victoria-metrics"]["command"]
    assert set(VICTORIA_METRICS_DEDUP) <= set(command)
