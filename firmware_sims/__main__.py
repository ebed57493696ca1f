"""`python -m firmware_sims ...` is `homevitals sim ...`."""

from __future__ import annotations

from firmware_sims.cli import app

if __name__ == "__main__":
    app()
