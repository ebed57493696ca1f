"""Import rules (docs/architecture.md, packages and the direction of imports), from the ASTs.

- Core modules (all of `devices`, and each package's pure modules listed in CORE) import only
  the stdlib, numpy/scipy and other core modules: no I/O, network, BLE, MQTT, HTTP, database or
  asyncio library, and they do not read the environment.
- Packages import only what the design allows (gateway -> devices, alerts -> devices, ingest...).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PACKAGES = (
    "devices",
    "careteam",
    "bumble_bleak",
    "firmware_sims",
    "gateway",
    "ingest",
    "alerts",
    "api",
    "homevitals",
)

# Pure modules outside `devices` (paths relative to the repository root, files or folders).
# Each package adds its kernels here as they land.
CORE: tuple[str, ...] = (
    "devices",
    "api/dashboard/charts.py",
    "bumble_bleak/advertising.py",
    "bumble_bleak/errors.py",
    "firmware_sims/device_clock.py",
    "firmware_sims/expectations.py",
    "firmware_sims/faults.py",
    "firmware_sims/models.py",
    "firmware_sims/physiology_bp.py",
    "firmware_sims/physiology_glucose.py",
    "firmware_sims/physiology_hr.py",
    "firmware_sims/physiology_vitals.py",
    "firmware_sims/wearable_plans.py",
    "firmware_sims/racp_server.py",
    "firmware_sims/scenario.py",
    "firmware_sims/errors.py",
    "careteam/errors.py",
    "careteam/kinds.py",
    "careteam/conditions.py",
    "careteam/patients.py",
    "careteam/consent.py",
    "careteam/audit.py",
    "careteam/enrolment.py",
    "careteam/forwarded.py",
    "careteam/pairing.py",
    "ingest/points.py",
    "gateway/errors.py",
    "gateway/progress.py",
    "gateway/quirks.py",
    "ingest/rows.py",
    "ingest/conflicts.py",
    "alerts/delivery/errors.py",
    "alerts/delivery/schedule.py",
    "alerts/delivery/ssrf.py",
    "alerts/delivery/special_addresses.py",
    "alerts/delivery/escalation.py",
    "alerts/delivery/ack_token.py",
    "alerts/delivery/payload.py",
    "alerts/rules",
    "alerts/errors.py",
    "alerts/events.py",
    "alerts/engine/evaluate.py",
    "alerts/engine/episodes.py",
    "alerts/engine/offline.py",
    "alerts/engine/replay.py",
    "alerts/engine/window.py",
    "alerts/engine/tiered.py",
    "alerts/engine/scoped.py",
    "alerts/engine/source.py",
    "alerts/freshness/core.py",
    "api/errors.py",
    "api/scopes.py",
    "api/ratelimit.py",
    "api/fhir",
    "alerts/engine/patients.py",
)

ADAPTER_LIBRARIES = {
    "asyncio",
    "socket",
    "ssl",
    "subprocess",
    "threading",
    "multiprocessing",
    "sqlite3",
    "bleak",
    "bumble",
    "paho",
    "aiomqtt",
    "amqtt",
    "influxdb_client",
    "httpx",
    "requests",
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "typer",
    "pydantic",
    "pydantic_settings",
    "standardwebhooks",
    "jinja2",
    "yaml",
    "urllib",
}
ALLOWED_PACKAGES = {
    "devices": {"devices"},
    "bumble_bleak": {"devices", "bumble_bleak"},
    "firmware_sims": {"devices", "bumble_bleak", "firmware_sims"},
    # The hub never imports the simulated devices: a production hub ships no simulator.
    "gateway": {"devices", "bumble_bleak", "gateway"},
    "careteam": {"devices", "careteam"},
    "ingest": {"devices", "careteam", "ingest"},
    "alerts": {"devices", "careteam", "ingest", "alerts"},
    # The API sits above everything it serves (never firmware_sims or gateway).
    "api": {"devices", "careteam", "ingest", "alerts", "api"},
    "homevitals": set(PACKAGES),
}
STDLIB = set(sys.stdlib_module_names)
# Pure compute libraries a core module may use (numba compiles kernels; orjson parses JSON;
# neither does I/O).
NUMERIC = {"numpy", "scipy", "numba", "orjson"}


def _modules(base: str) -> Iterator[Path]:
    path = ROOT / base
    if path.is_file():
        yield path
    else:
        yield from sorted(path.rglob("*.py"))


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def _reads_environment(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(), str(path))
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr in {"environ", "getenv"}
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    ]


def _core_files() -> list[Path]:
    return [p for base in CORE if (ROOT / base).exists() for p in _modules(base)]


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_adapter_library(path: Path) -> None:
    core_packages = {c.split("/")[0] for c in CORE}
    bad = []
    for line, top in _imports(path):
        if top in ADAPTER_LIBRARIES:
            bad.append(f"line {line}: {top}")
        elif top not in STDLIB and top not in NUMERIC | {"__future__"} | core_packages:
            bad.append(f"line {line}: {top} (not stdlib, numpy/scipy/numba/orjson or core)")
    assert not bad, f"{path.relative_to(ROOT)} is core but imports: {bad}"
    assert not _reads_environment(path), "core modules never read the environment"


def _package_files() -> list[tuple[str, Path]]:
    return [(pkg, p) for pkg in PACKAGES for p in _modules(pkg)]


@pytest.mark.parametrize(
    ("package", "path"), _package_files(), ids=lambda v: v if isinstance(v, str) else v.name
)
def test_packages_import_only_what_the_design_allows(package: str, path: Path) -> None:
    bad = [
        f"line {line}: {top}"
        for line, top in _imports(path)
        if top in PACKAGES and top not in ALLOWED_PACKAGES[package]
    ]
    assert not bad, f"{path.relative_to(ROOT)} ({package}) imports {bad}"


def test_the_checker_catches_an_upward_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport bleak\nx = os.environ['A']\n")
    assert "bleak" in {top for _, top in _imports(bad)}
    assert _reads_environment(bad) == [3]


def test_the_hub_does_not_load_the_simulators() -> None:
    """Transitively: importing the hub's entry points loads no `firmware_sims` module."""
    code = (
        "import sys, gateway.app, gateway.cli, gateway.__main__\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'firmware_sims'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]", out.stdout
