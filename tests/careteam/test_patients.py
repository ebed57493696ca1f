"""Patients in the record: registration checks each field, care plans for the rules engine."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from careteam import record
from careteam.cli import patient_app
from careteam.errors import InvalidFieldError, NotFoundError
from careteam.tables import patient_records
from tests.careteam.conftest import T0
from tests.support.record import TEST_ACTOR


def test_register_read_and_care_plans(store: sa.Engine) -> None:
    with store.begin() as conn:
        profile = record.add_patient(
            conn,
            patient_id="p-001",
            display_name="Wang Li",
            timezone="Asia/Shanghai",
            conditions=["hypertension", "diabetes_type_2", "hypertension"],
            actor=TEST_ACTOR,
            at=T0,
        )
        record.add_patient(
            conn, patient_id="p-002", display_name="李明", timezone="UTC", actor=TEST_ACTOR, at=T0
        )
        record.update_care_plan(
            conn, "p-002", actor=TEST_ACTOR, at=T0, conditions=["chronic_kidney_disease"]
        )
        plans = record.care_plans(conn, ["p-001", "p-002", "p-404"])
    assert profile.short_name == "W. L." and profile.conditions == (
        "diabetes_type_2",
        "hypertension",
    )
    assert plans["p-001"].timezone == "Asia/Shanghai"
    assert plans["p-002"].conditions == ("chronic_kidney_disease",)
    assert "p-404" not in plans
    with store.connect() as conn:
        assert record.get_patient(conn, "p-002").short_name == "李*"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"patient_id": "a/b"}, "patient_id"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"conditions": ["diabetes", "vampirism"]}, "conditions"),
        ({"language": "fr"}, "language"),
        ({"display_name": "  "}, "display_name"),
    ],
)
def test_bad_fields_are_named_and_nothing_is_written(
    store: sa.Engine, fields: dict[str, object], field: str
) -> None:
    values: dict[str, object] = {
        "patient_id": "p1",
        "display_name": "Wang Li",
        "timezone": "Asia/Shanghai",
    }
    values.update(fields)
    with store.begin() as conn, pytest.raises(InvalidFieldError) as caught:
        record.add_patient(conn, actor=TEST_ACTOR, at=T0, **values)  # type: ignore[arg-type]
    assert caught.value.field == field
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(patient_records)).scalar() == 0


def test_duplicates_and_unknown_ids(store: sa.Engine) -> None:
    with store.begin() as conn:
        record.add_patient(
            conn, patient_id="p1", display_name="A B", timezone="UTC", actor=TEST_ACTOR, at=T0
        )
    with store.begin() as conn, pytest.raises(InvalidFieldError) as dup:
        record.add_patient(
            conn, patient_id="p1", display_name="C D", timezone="UTC", actor=TEST_ACTOR, at=T0
        )
    assert dup.value.field == "patient_id"
    with store.connect() as conn, pytest.raises(NotFoundError) as missing:
        record.get_patient(conn, "p2")
    assert missing.value.field == "patient_id"


def test_patient_add_command(pg_url: str) -> None:
    runner = CliRunner()
    assert runner.invoke(patient_app, ["migrate", "--db", pg_url]).exit_code == 0
    args = ["add", "p7", "--name", "Zhang Wei", "--timezone", "Asia/Shanghai"]
    ok = runner.invoke(patient_app, [*args, "--condition", "heart_failure", "--db", pg_url])
    assert ok.exit_code == 0, ok.stderr
    assert '"short_name": "Z. W."' in ok.stdout
    bad = runner.invoke(
        patient_app, ["add", "p8", "--name", "X", "--timezone", "PST", "--db", pg_url]
    )
    assert bad.exit_code == 2 and "timezone" in bad.stderr
    listed = runner.invoke(patient_app, ["list", "--db", pg_url])
    assert listed.stdout.startswith("p7\tZ. W.\tAsia/Shanghai\theart_failure")
