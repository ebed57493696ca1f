"""`python -m gateway [--settings FILE]`: run the home hub (the composition root)."""

from __future__ import annotations

import sys

from gateway.cli import app

if __name__ == "__main__":
    app(args=["run", *sys.argv[1:]], prog_name="python -m gateway")
