"""The time-series mirror to a local line-protocol file (the single-machine demo's mirror):
points on disk before the cursor moves, every stored reading once, the URL checked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.errors import IngestConfigError, MirrorError
from ingest.mirror import FileLineWriter, cursor_position, mirror_step
from ingest.points import StoredReading, lines_for
from ingest.read_port import last_reading_id
from ingest.settings import load_settings
from ingest.store import make_engine, migrate, write_batch
from tests.ingest.support import make_reading

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_every_stored_reading_lands_in_the_file_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    points = tmp_path / "points.lp"
    writer = FileLineWriter.from_url(points.as_uri())
    readings = [make_reading("gw-1", "patient-1", "SN1", seq) for seq in range(25)]
    try:
        write_batch(engine, readings, [], now=NOW)
        moved = [mirror_step(engine, writer, name="tsdb", limit=10, now=NOW) for _ in range(4)]
        assert moved == [10, 10, 5, 0]
        assert cursor_position(engine, "tsdb") == last_reading_id(engine)
        expected = lines_for(
            StoredReading(i + 1, r.kind.value, r.patient_id, r.device.id, r.measured_at,
                          {k: float(v) for k, v in r.values.items()})
            for i, r in enumerate(readings)
        )[0]  # fmt: skip
        assert points.read_text().splitlines() == expected
    finally:
        engine.dispose()


def test_a_write_that_fails_leaves_the_cursor(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate(url)
    engine = make_engine(url)
    writer = FileLineWriter(tmp_path / "no-such-dir" / "points.lp")
    try:
        write_batch(engine, [make_reading("gw-1", "patient-1", "SN1", 0)], [], now=NOW)
        with pytest.raises(MirrorError, match="not written"):
            mirror_step(engine, writer, name="tsdb", limit=10, now=NOW)
        assert cursor_position(engine, "tsdb") == 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["file://relative/points.lp", "file://host/points.lp"])
def test_a_file_url_needs_an_absolute_local_path(url: str) -> None:
    with pytest.raises(IngestConfigError) as caught:
        load_settings(tsdb_url=url)
    assert caught.value.key == "HV_INGEST_TSDB_URL"
    with pytest.raises(MirrorError, match="absolute path"):
        FileLineWriter.from_url(url.replace("file://relative", "http://x"))


def test_a_file_mirror_needs_no_token(tmp_path: Path) -> None:
    settings = load_settings(tsdb_url=(tmp_path / "points.lp").as_uri())
    assert settings.tsdb_token is None
