"""The repository documents itself: docs/ pages exist where the code points, every rule in the
catalogue is explained, and every runtime dependency is imported by the code it ships."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.rules.catalog import RULES

ROOT = Path(__file__).parents[2]
SOURCE_PACKAGES = tuple(
    tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
)

# Distribution name -> the module the code imports.
IMPORT_NAMES = {
    "paho-mqtt": "paho",
    "babel": "babel",
    "influxdb-client": "influxdb_client",
    "sqlalchemy": "sqlalchemy",
    "psycopg": "psycopg",
    "pydantic-settings": "pydantic_settings",
    "pyjwt": "jwt",
    "fhir.resources": "fhir",
}
# Runtime dependencies nothing imports by name, and why they are still needed.
INDIRECT = {
    "cryptography": "PyJWT[crypto] signs and verifies RS256/ES256 with it; pinned >= 42",
    "python-multipart": "FastAPI imports it to parse the dashboard's form posts",
}


def _tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if (ROOT / line).is_file()]


def test_no_reference_to_documents_outside_the_repository() -> None:
    pattern = re.compile(r"\b(DESIGN|RELIABILITY|PROFILES|CLINICAL|STYLE)\.md\b|shared/")
    offenders = []
    for name in _tracked_files():
        if not name.endswith((".py", ".md", ".toml", ".cfg", ".conf", ".yml", ".yaml", ".txt")):
            continue
        if name == "tests/spine/test_docs.py":
            continue
        for number, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")
    assert offenders == []


def test_docs_pages_named_in_the_repository_exist() -> None:
    pattern = re.compile(r"(?<![\w/.-])docs/[a-z0-9-]+\.md")  # not another repository's docs/
    missing = set()
    for name in _tracked_files():
        if name.endswith((".png", ".mo")):
            continue
        text = (ROOT / name).read_text(errors="replace")
        found = set(pattern.findall(text))
        if name.startswith("docs/"):  # relative links between pages
            found |= {f"docs/{m}" for m in re.findall(r"\]\(([a-z0-9-]+\.md)\)", text)}
        missing |= {page for page in found if not (ROOT / page).is_file()}
    assert missing == set()


# A test named in prose: `tests/x/test_y.py`, `x/test_y.py` (under tests/), `test_y.py` (beside
# the file named before it on the line or in the paragraph), each optionally `::test_name`, or
# `::test_name` alone (in the file named before it).
TEST_REFERENCE = re.compile(r"`((?:tests/)?[a-z0-9_/]*test_[a-z0-9_]+\.py)?(?:::(\w+))?`")


def _cited_tests(text: str) -> Iterator[tuple[str, Path, str | None]]:
    """(paragraph start, test file, test name or None) for every test a page names."""
    for paragraph in re.split(r"\n\s*\n", text):
        last: Path | None = None
        for match in TEST_REFERENCE.finditer(paragraph):
            path, name = match.groups()
            if path is None and name is None:
                continue
            if path is not None:
                if "/" not in path and last is not None:
                    last = last.parent / path
                else:
                    last = Path(path if path.startswith("tests/") else f"tests/{path}")
            if last is None:
                raise AssertionError(f"`::{name}` names no file: {paragraph[:80]!r}")
            yield paragraph[:60], last, name


def test_every_test_the_docs_cite_exists() -> None:
    """docs/threat-model.md and docs/reliability.md name the test behind each guarantee: a
    renamed or deleted test must not leave a guarantee citing nothing."""
    missing = []
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    for page in pages:
        for where, path, name in _cited_tests(page.read_text()):
            source = ROOT / path
            if not source.is_file():
                missing.append(f"{page.name}: {path} ({where!r})")
            elif name is not None and not re.search(rf"def {name}\b", source.read_text()):
                missing.append(f"{page.name}: {path}::{name}")
    assert missing == []


def test_every_catalogue_rule_is_explained_in_the_clinical_page() -> None:
    page = (ROOT / "docs" / "clinical-rules.md").read_text()
    unexplained = [rule.rule_id for rule in RULES if f"`{rule.rule_id}`" not in page]
    assert unexplained == []


def _imported_top_level_modules() -> set[str]:
    modules: set[str] = set()
    for package in SOURCE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", spec)
    assert match is not None, spec
    return match.group(0).lower()


@pytest.mark.parametrize(
    "spec",
    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"],
)
def test_every_runtime_dependency_is_imported_by_the_code(spec: str) -> None:
    name = _requirement_name(spec)
    if name in INDIRECT:
        return
    module = IMPORT_NAMES.get(name, name.replace("-", "_"))
    assert module in _IMPORTED, f"{name}: nothing in {SOURCE_PACKAGES} imports {module}"


_IMPORTED = _imported_top_level_modules()
