"""End to end through the real pieces: a simulated meter (holding a level-2 hypo from 50
minutes ago) and cuff on the virtual air -> the gateway (pairing with the meter's passkey,
back-fill) -> Mosquitto -> ingest (subprocess) -> PostgreSQL -> the rules engine (subprocess)
-> the delivery worker (subprocess) -> a real uvicorn receiver on loopback that verifies
every Standard Webhooks signature with the reference library.

The composition is `homevitals.demo`'s, with the devices built here and PostgreSQL as the
record store; the test's receiver is a second endpoint of the demo's care team.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from careteam.secrets import new_key_entry
from firmware_sims.air import VirtualAir
from firmware_sims.bp_cuff import BloodPressureCuff
from firmware_sims.glucose_meter import GlucoseMeter
from firmware_sims.models import get_model
from homevitals.demo import DemoOptions, run_demo
from homevitals.demo_devices import Home
from tests.e2e.receiver import RecordingReceiver, serve

PATIENT = "pat-e2e-001"
PASSKEY = 246810
HYPO_MG_DL = 40.0
IN_RANGE = 24  # glucose readings before the hypo
CUFF_READINGS = 10
# What a thin payload may carry (alerts/delivery/schema/event.v1.json): ids and references.
THIN_DATA_KEYS = {"event_id", "revision", "patient", "alert_id", "rule_id", "priority",
                  "escalation_tier", "subject_id", "page_member_ids", "links"}  # fmt: skip


async def _home(air: VirtualAir) -> Home:
    now = datetime.now(UTC)
    meter = GlucoseMeter(air, get_model("accu-chek-like"), serial="E2E0000001",
                         address="F1:E2:00:00:00:01", passkey=PASSKEY)  # fmt: skip
    for i in range(IN_RANGE):  # every 6 h over the last 6 days, 100-159 mg/dL
        at = now - timedelta(hours=8 + 6 * (IN_RANGE - 1 - i))
        meter.take_reading(100 + (i * 13) % 60, at_utc=at)
    meter.take_reading(HYPO_MG_DL, at_utc=now - timedelta(minutes=50))
    cuff = BloodPressureCuff(air, get_model("omron-like"), serial="E2E00000BP",
                             address="F2:E2:00:00:00:01")  # fmt: skip
    for i in range(CUFF_READINGS):
        at = now - timedelta(hours=12 * (CUFF_READINGS - i))
        cuff.store(cuff.encode(systolic_mmhg=116 + i % 5, diastolic_mmhg=74, pulse_per_min=66,
                               user_id=1, body_movement=False, irregular_pulse=False,
                               time_stamp=cuff.clock.now(at)))  # fmt: skip
    await meter.power_on()
    await cuff.power_on()
    return Home(
        patient_id=PATIENT,
        devices=[meter, cuff],
        passkeys={meter.address.upper(): PASSKEY},
        expected={"glucose.hypo_l2": 1},
    )


async def test_a_stored_hypo_reaches_the_care_team_once_signed_and_thin(
    pg_url: str, tmp_path: Path
) -> None:
    keys = new_key_entry()
    async with serve(RecordingReceiver(pg_url, keys)) as receiver:
        options = DemoOptions(directory=tmp_path / "demo", db_url=pg_url, timeout_s=60.0,
                              extra_webhook_urls=(receiver.url,), pairing_page=True,
                              secrets_keys=keys)  # fmt: skip
        lines: list[str] = []
        report = await run_demo(options, say=lines.append, home_builder=_home)
    story = "\n".join(lines)
    assert report.ok, story

    # Every reading the devices held is in the record store, once.
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        rows, distinct = conn.execute(
            sa.text("SELECT count(*), count(DISTINCT reading_id) FROM readings")
        ).one()
        hypo_events = conn.execute(
            sa.text("SELECT event_id FROM alert_events "
                    "WHERE rule_id = 'glucose.hypo_l2' AND type = 'alert.opened'")
        ).scalars().all()  # fmt: skip
    engine.dispose()
    # The demo's self-check accounted for every record the devices held: all stored.
    assert report.check is not None
    assert report.check.tally.produced == IN_RANGE + 1 + CUFF_READINGS
    assert rows == distinct == report.check.stored == report.check.tally.produced
    assert report.check.audit_ok

    # The test's receiver: every request verified, each webhook id delivered exactly once.
    assert receiver.received, story
    assert all(r.verified for r in receiver.received)
    assert Counter(r.webhook_id for r in receiver.received).most_common(1)[0][1] == 1
    opened = [r for r in receiver.received if r.event()["type"] == "alert.opened"]
    hypo = [r for r in opened if _data(r.event())["rule_id"] == "glucose.hypo_l2"]
    assert len(hypo) == 1
    assert hypo[0].webhook_id == _data(hypo[0].event())["event_id"] == hypo_events[0]
    assert len(hypo_events) == 1
    assert _data(hypo[0].event())["priority"] == "high"
    assert _data(hypo[0].event())["patient"] == {"reference": f"Patient/{PATIENT}"}

    # Thin payloads: ids, priority and references only, never a measurement.
    for request in receiver.received:
        data = _data(request.event())
        assert set(data) <= THIN_DATA_KEYS, sorted(data)
        text = request.body.decode()
        for word in ("glucose_mmol", "mmol", "mg_dl", "systolic", "diastolic", "values",
                     "evidence", "reading"):  # fmt: skip
            assert word not in text, (word, text)
        assert f"{HYPO_MG_DL / 18.016:.2f}" not in text

    # The demo's own verifying receiver (`homevitals webhook receive`) saw the same events.
    assert {h.webhook_id for h in report.webhooks} == {r.webhook_id for r in receiver.received}


def _data(event: dict[str, object]) -> dict[str, object]:
    data = event["data"]
    assert isinstance(data, dict)
    return json.loads(json.dumps(data))
