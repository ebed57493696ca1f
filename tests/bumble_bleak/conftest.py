"""The backend is exercised against real firmware: the echo peripheral on a virtual air."""

from __future__ import annotations

from tests.firmware_sims.conftest import air

__all__ = ["air"]
