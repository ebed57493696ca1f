"""`homevitals alerts evaluate --input readings.csv --now ... --format json`, run as the real
console script in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEADER = (
    "patient_id,kind,measured_at,glucose_mmol_l,systolic_mmhg,diastolic_mmhg,pulse_per_min,"
    "meal,flags\n"
)
HOMEVITALS = Path(sys.executable).with_name("homevitals")


def _run(tmp_path: Path, body: str, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "readings.csv"
    path.write_text(HEADER + body)
    return subprocess.run(
        [str(HOMEVITALS), "alerts", "evaluate", "--input", str(path),
         "--now", "2026-03-01T08:00:00Z", "--format", "json", *extra],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_prints_one_json_object_per_alert_open_at_now(tmp_path: Path) -> None:
    body = (
        "p1,glucose,2026-03-01T07:00:00Z,2.8,,,,fasting,\n"
        "p2,blood_pressure,2026-03-01T06:00:00Z,,185,100,70,,\n"
        "p2,blood_pressure,2026-03-01T06:03:00Z,,184,101,70,,symptoms\n"
        "p3,glucose,2026-03-01T06:00:00Z,1.5,,,,,control_solution\n"
        "p4,glucose,2026-03-01T06:00:00Z,6.5,,,,,\n"
    )
    proc = _run(tmp_path, body)
    assert proc.returncode == 0, proc.stderr
    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(a["patient_id"], a["rule_id"], a["priority"]) for a in alerts] == [
        ("p1", "glucose.hypo_l2", "high"),
        ("p2", "bp.crisis", "high"),
    ]
    hypo, crisis = alerts
    assert hypo["evidence"]["reading_ids"] == ["line-2"]
    assert hypo["evidence"]["thresholds"]["below_mmol_l"] == 2.997  # 54 mg/dL
    assert hypo["evidence"]["rule_version"] == 2
    assert crisis["evidence"]["reading_ids"] == ["line-3", "line-4"]
    assert crisis["evidence"]["statistics"]["confirmed_readings"] == 2.0
    assert crisis["evidence"]["statistics"]["symptom_readings"] == 1.0


def test_care_plan_overrides_a_threshold(tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"p1": {"glucose.hypo_l1": {"below_mmol_l": 4.5}}}))
    proc = _run(tmp_path, "p1,glucose,2026-03-01T07:00:00Z,4.2,,,,,\n", "--care-plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    (alert,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert alert["rule_id"] == "glucose.hypo_l1"
    assert alert["evidence"]["thresholds"]["below_mmol_l"] == 4.5


@pytest.mark.parametrize(
    ("row", "where"),
    [
        ("p1,glucose,2026-03-01T07:00:00Z,abc,,,,,\n", "line 2, column glucose_mmol_l"),
        ("p1,glucose,2026-03-01T07:00:00,5.0,,,,,\n", "line 2, column measured_at"),
        ("p1,sugar,2026-03-01T07:00:00Z,5.0,,,,,\n", "line 2, column kind"),
        ("p1,blood_pressure,2026-03-01T07:00:00Z,,,80,,,\n", "line 2, column systolic_mmhg"),
        ("p1,glucose,2026-03-01T07:00:00Z,5.0,,,,lunch,\n", "line 2, column meal"),
        ("p1,glucose,2026-03-01T07:00:00Z,5.0,,,,\n", "line 2, column (row)"),
        ("p 1,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n", "line 2, column patient_id"),
        ("p1,blood_pressure,2026-03-01T07:00:00Z,,500,80,,,\n", "line 2, column systolic_mmhg"),
    ],
    ids=["number", "naive-time", "kind", "missing-systolic", "meal", "short-row", "id", "range"],
)
def test_bad_input_names_line_and_column(tmp_path: Path, row: str, where: str) -> None:
    proc = _run(tmp_path, "p0,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n" + row.replace("line 2", ""))
    assert proc.returncode == 2
    assert where.replace("line 2", "line 3") in proc.stderr
    assert proc.stdout == ""


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_text("patient_id,kind,measured_at\np1,glucose,2026-03-01T07:00:00Z\n")
    proc = subprocess.run(
        [str(HOMEVITALS), "alerts", "evaluate", "--input", str(path), "--now",
         "2026-03-01T08:00:00Z"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "line 1, column glucose_mmol_l: missing column" in proc.stderr


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"", "line 1, column (header)"),
        (HEADER.encode() + b"p1,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n\xff\xfe,\n",
         "line 3, column (file): byte 0xff is not UTF-8"),
        (HEADER.replace("meal", "flags").encode(), "column flags: column appears twice"),
        (HEADER.encode() + b"p1,glucose,2026-03-01T07:00:00Z,5\x00,,,,,\n", "line 2"),
    ],
    ids=["empty", "not-utf8", "duplicate-column", "nul-byte"],
)
def test_unreadable_files_are_named_errors(tmp_path: Path, content: bytes, where: str) -> None:
    path = tmp_path / "readings.csv"
    path.write_bytes(content)
    proc = subprocess.run(
        [str(HOMEVITALS), "alerts", "evaluate", "--input", str(path), "--now",
         "2026-03-01T08:00:00Z"], capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert where in proc.stderr
    assert "Traceback" not in proc.stderr
