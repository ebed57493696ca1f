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
        (
            HEADER.encode() + b"p1,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n\xff\xfe,\n",
            "line 3, column (file): byte 0xff is not UTF-8",
        ),
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


def _evaluate(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HOMEVITALS), "alerts", "evaluate", "--input", str(path), "--now",
         "2026-03-01T08:00:00Z", *extra], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip


def test_a_spreadsheet_export_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + (HEADER + "p1,glucose,2026-03-01T07:00:00Z,2.8,,,,,\n").encode()
    )
    proc = _evaluate(path)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["rule_id"] for x in proc.stdout.splitlines()] == ["glucose.hypo_l2"]


def test_errors_name_the_physical_line_and_shorten_huge_values(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    huge = "9" * 100_000
    good = "p1,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n"
    path.write_text(HEADER + good + "\n" + f"p1,glucose,{huge},5.0,,,,,\n")  # line 4
    proc = _evaluate(path)
    assert proc.returncode == 2
    assert "line 4, column measured_at: '9999" in proc.stderr
    assert "(100,000 characters) is not ISO 8601" in proc.stderr
    assert len(proc.stderr) < 300
    # A quoted cell spanning lines 3-4 is reported at the line it starts on.
    path.write_text(HEADER + good + 'p1,glucose,2026-03-01T07:00:00Z,5.0,,,,,"a\nb"\n' + good)
    proc = _evaluate(path)
    assert proc.returncode == 2
    assert "line 3, column flags" in proc.stderr


def test_a_missing_file_says_no_such_file(tmp_path: Path) -> None:
    proc = _evaluate(tmp_path / "nope.csv")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"{tmp_path / 'nope.csv'}: no such file"
    proc = _evaluate(tmp_path)
    assert proc.returncode == 2
    assert "is a directory" in proc.stderr


def test_a_reading_id_sent_twice_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    header = HEADER.rstrip("\n") + ",reading_id\n"
    path.write_text(
        header
        + "p2,blood_pressure,2026-03-01T07:50:00Z,,190,110,70,,,r1\n"
        + "p2,blood_pressure,2026-03-01T07:52:00Z,,190,110,70,,,r1\n"  # same id, resent
    )
    proc = _evaluate(path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # one severe reading, re-measure time not over: no crisis yet


def test_late_readings_timezones_and_conditions_from_the_care_plan(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    header = HEADER.rstrip("\n") + ",received_at,device_id\n"
    rows = ["p1,glucose,2026-02-26T07:00:00Z,2.5,,,,,,2026-03-01T07:30:00Z,meter-1"]
    # ESH protocol: 132/78 twice at 07:00 and 19:00 Berlin time for 7 days (diabetes: 130/80).
    for day in range(22, 29):
        for hour in (6, 18):  # UTC hours = 07:00 and 19:00 CET
            for minute in (0, 2):
                rows.append(
                    f"p3,blood_pressure,2026-02-{day}T{hour:02d}:{minute:02d}:00Z,,132,78,70,,,"
                    f"2026-02-{day}T{hour:02d}:{minute + 1:02d}:00Z,cuff-1"
                )
    path.write_text(header + "\n".join(rows) + "\n")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps({"p3": {"timezone": "Europe/Berlin", "conditions": ["icd10:E11.9"]}})
    )
    proc = _evaluate(path, "--care-plan", str(plan))
    assert proc.returncode == 0, proc.stderr
    alerts = {(a["patient_id"], a["rule_id"]): a for a in map(json.loads, proc.stdout.splitlines())}
    late = alerts[("p1", "glucose.hypo_l2")]
    assert late["late"] is True and late["priority"] == "medium"
    assert late["evidence"]["received_at_s"] == [1772350200]
    esh = alerts[("p3", "bp.home_esh_7d")]
    assert esh["evidence"]["target_conditions"] == ["diabetes"]
    assert esh["evidence"]["device_ids"] == ["cuff-1"]
    plain = _evaluate(path)
    assert ("p3", "bp.home_esh_7d") not in {
        (a["patient_id"], a["rule_id"]) for a in map(json.loads, plain.stdout.splitlines())
    }


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"p1": {"timezone": "Mars/Olympus"}}, "p1.timezone: 'Mars/Olympus' is not an IANA"),
        ({"p1": {"conditions": "diabetes"}}, "p1.conditions: must be a list"),
        ({"p1": {"bp.nonsense": {}}}, "p1.bp.nonsense: not a rule id"),
    ],
)
def test_a_bad_care_plan_is_named(tmp_path: Path, plan: object, message: str) -> None:
    path = tmp_path / "readings.csv"
    path.write_text(HEADER + "p1,glucose,2026-03-01T07:00:00Z,5.0,,,,,\n")
    care = tmp_path / "plan.json"
    care.write_text(json.dumps(plan))
    proc = _evaluate(path, "--care-plan", str(care))
    assert proc.returncode == 2
    assert message in proc.stderr
