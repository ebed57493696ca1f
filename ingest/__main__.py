"""`python -m ingest`: the ingest composition root (same commands as `homevitals ingest`)."""

from ingest.cli import app

if __name__ == "__main__":
    app(prog_name="python -m ingest")
