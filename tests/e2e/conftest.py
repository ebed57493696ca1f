"""The fault suite's report: recovery time after each fault, at the end of the run."""

from __future__ import annotations

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.e2e.test_fault_suite import RECOVERY

    if RECOVERY:
        terminalreporter.section("fault suite: recovery times")
        for what, seconds in RECOVERY:
            terminalreporter.write_line(f"{what}: {seconds:.1f}")
