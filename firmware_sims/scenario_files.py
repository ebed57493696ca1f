"""Finding and reading scenario files (the file I/O around the pure `scenario` parser)."""

from __future__ import annotations

from pathlib import Path

from firmware_sims.errors import ScenarioError
from firmware_sims.scenario import Scenario, parse_scenario

SCENARIO_DIR = Path(__file__).parent / "scenarios"


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str) -> Scenario:
    """Load a shipped scenario by name (`t1-hypo-week`) or any TOML file by path.

    Raises:
        ScenarioError: no such scenario, or the file is invalid (the key is named).
    """
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ScenarioError(
            "scenario", f"no scenario {name_or_path!r} (shipped: {shipped_scenarios()})"
        )
    return parse_scenario(path.read_text(encoding="utf-8"), source=str(path))
