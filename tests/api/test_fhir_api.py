"""The FHIR API end to end: Observations round-trip their readings, pages follow `next`, dates
and codes filter, bad input is a 400 naming the parameter, unknown ids 404, rate limits 429,
and nothing above DEBUG in the logs names a patient or a reading."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from api.fhir import codes
from api.fhir.search import encode_cursor
from api.fhir_models import validated
from api.tokens import Actor
from devices.reading import Kind, Reading
from devices.special import Special
from tests.api.record import NOW, Seeded
from tests.api.support import serve, token

_UNIT_OF = {"mm[Hg]": "mmHg", "/min": "/min", "mmol/L": "mmol/L"}
# LOINC code -> (kind, value name) for reading an Observation back
_BACK = {
    "8480-6": "systolic_mmhg",
    "8462-4": "diastolic_mmhg",
    "8867-4": "pulse_per_min",
    "14743-9": "glucose_mmol_l",
}


def _member_a(seeded: Seeded) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(Actor.MEMBER, seeded.member_a, "user/*.read")}


def _get(base_url: str, path: str, headers: dict[str, str]) -> dict[str, object]:
    response = httpx.get(base_url + path, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    return validated(response.json())


def _loinc(concept: object) -> str:
    assert isinstance(concept, dict)
    return next(c["code"] for c in concept["coding"] if c["system"] == codes.LOINC)


def _value(holder: dict[str, object]) -> float | Special:
    if "valueQuantity" in holder:
        q = holder["valueQuantity"]
        assert isinstance(q, dict)
        assert q["system"] == codes.UCUM
        return float(q["value"])
    absent = {
        "positive-infinity": Special.POSITIVE_INFINITY,
        "negative-infinity": Special.NEGATIVE_INFINITY,
        "not-a-number": Special.NAN,
    }
    reason = holder["dataAbsentReason"]
    assert isinstance(reason, dict)
    return absent[reason["coding"][0]["code"]]


def _values_back(observations: list[dict[str, object]]) -> dict[str, float | Special]:
    out: dict[str, float | Special] = {}
    for obs in observations:
        code = _loinc(obs["code"])
        if code in _BACK:
            out[_BACK[code]] = _value(obs)
        for component in obs.get("component", []):  # type: ignore[attr-defined]
            out[_BACK[_loinc(component["code"])]] = _value(component)
    return out


@pytest.mark.parametrize("which", ["bp", "hi"])
def test_an_observation_round_trips_its_reading(base_url: str, seeded: Seeded, which: str) -> None:
    reading_id = seeded.bp_reading if which == "bp" else seeded.hi_reading
    reading: Reading = seeded.readings[reading_id]
    ids = [reading_id, f"{reading_id}-hr"] if reading.kind is Kind.BLOOD_PRESSURE else [reading_id]
    observations = [_get(base_url, f"/fhir/Observation/{i}", _member_a(seeded)) for i in ids]
    assert _values_back(observations) == dict(reading.values)
    for obs in observations:
        assert datetime.fromisoformat(str(obs["effectiveDateTime"])) == reading.measured_at
        clock = next(e for e in obs["extension"] if e["url"] == codes.DEVICE_CLOCK_EXTENSION)  # type: ignore[attr-defined]
        parts = {e["url"]: e for e in clock["extension"]}
        assert parts["deviceTime"]["valueString"] == reading.device_time
        assert parts["timeOffsetMinutes"]["valueInteger"] == reading.device_time_offset_min
        assert parts["clockOffsetSeconds"]["valueDecimal"] == reading.clock_offset_s
        assert obs["device"] == {"reference": f"Device/{reading.device.id}"}
        assert obs["subject"] == {"reference": f"Patient/{reading.patient_id}"}
        assert obs["identifier"] == [{"system": codes.UUID_URN, "value": f"urn:uuid:{reading_id}"}]
        units = {q["code"] for q in _quantities(obs)}
        assert units <= set(_UNIT_OF)
    if which == "hi":
        assert observations[0]["interpretation"][0]["coding"][0]["code"] == ">"  # type: ignore[index]
    # the devices the Observations name are served too, gateway included
    device = _get(base_url, f"/fhir/Device/{reading.device.id}", _member_a(seeded))
    assert device["serialNumber"] == reading.device.serial
    gateway_ref = next(
        e for e in observations[0]["extension"] if e["url"] == codes.GATEWAY_EXTENSION
    )  # type: ignore[attr-defined]
    gateway = _get(
        base_url, "/fhir/" + gateway_ref["valueReference"]["reference"], _member_a(seeded)
    )
    assert gateway["identifier"][0]["value"] == reading.gateway_id  # type: ignore[index]


def _quantities(obs: dict[str, object]) -> list[dict[str, object]]:
    found = [obs["valueQuantity"]] if "valueQuantity" in obs else []
    found += [c["valueQuantity"] for c in obs.get("component", []) if "valueQuantity" in c]  # type: ignore[attr-defined]
    return found  # type: ignore[return-value]


def test_pages_follow_next_links_newest_first(base_url: str, seeded: Seeded) -> None:
    url: str | None = f"{base_url}/fhir/Observation?patient=P1"  # the app's page size is 2
    seen: list[str] = []
    pages = 0
    while url is not None:
        bundle = validated(httpx.get(url, headers=_member_a(seeded)).json())
        assert bundle["type"] == "searchset"
        seen += [e["resource"]["id"] for e in bundle.get("entry", [])]  # type: ignore[attr-defined]
        url = next((lk["url"] for lk in bundle["link"] if lk["relation"] == "next"), None)  # type: ignore[attr-defined]
        pages += 1
    bp, glucose, hi = seeded.bp_reading, seeded.glucose_reading, seeded.hi_reading
    assert seen == [glucose, hi, bp, f"{bp}-hr"]
    assert pages == 2


def test_date_and_code_filters(base_url: str, seeded: Seeded) -> None:
    since = (NOW - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    recent = _get(
        base_url, f"/fhir/Observation?patient=P1&date=ge{since}&_count=50", _member_a(seeded)
    )
    assert {e["resource"]["id"] for e in recent["entry"]} == {
        seeded.glucose_reading,
        seeded.hi_reading,
    }  # type: ignore[attr-defined]
    window = f"date=ge{(NOW - timedelta(days=14)).date()}&date=le{NOW.date()}"
    pulse = _get(
        base_url,
        f"/fhir/Observation?patient=P1&code=http://loinc.org|8867-4&{window}",
        _member_a(seeded),
    )
    assert [e["resource"]["id"] for e in pulse["entry"]] == [f"{seeded.bp_reading}-hr"]  # type: ignore[attr-defined]
    none = _get(
        base_url,
        "/fhir/Observation?patient=P1&code=http://snomed.info/sct|8867-4",
        _member_a(seeded),
    )
    assert "entry" not in none


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("/fhir/Observation?patient=P1&date=yesterday", "date"),
        ("/fhir/Observation?patient=P1&_count=-1", "_count"),
        ("/fhir/Observation?patient=P1&subject=P1", "subject"),
        ("/fhir/Observation?patient=P1&_cursor=%ZZ", "_cursor"),
        ("/fhir/Observation?patient=P1&_cursor=WyJ4Il0", "_cursor"),
        ("/fhir/Observation?patient=P1&_cursor=" + encode_cursor(["x", 1, 1]), "_cursor"),
        ("/fhir/Observation?patient=P1&_cursor=" + encode_cursor(["2026-01-01", 1, 1]), "_cursor"),
        ("/fhir/Flag?patient=P1&_cursor=" + encode_cursor(["x", "y"]), "_cursor"),
        ("/fhir/AuditEvent?_cursor=" + encode_cursor(["x"]), "_cursor"),
        ("/fhir/AuditEvent?_cursor=" + encode_cursor([2**63]), "_cursor"),
        ("/fhir/Flag?patient=P1&status=maybe", "status"),
        ("/fhir/AuditEvent?agent=Organization/1", "agent"),
        ("/fhir/Flag/a%00b", "the path"),
        ("/fhir/Observation?patient=P%001", "the path"),
    ],
)
def test_malformed_search_parameters_are_400_naming_them(
    base_url: str, seeded: Seeded, query: str, field: str
) -> None:
    response = httpx.get(base_url + query, headers=_member_a(seeded))
    assert response.status_code == 400
    outcome = validated(response.json())
    assert outcome["issue"][0]["diagnostics"].startswith(field)  # type: ignore[index]


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Observation/00000000-0000-5000-8000-000000000000",
        "/fhir/Observation/short",
        "/fhir/Flag/nothing",
        "/fhir/Device/nothing",
        "/fhir/Patient/nobody",
        "/fhir/Patient/bad_id",
        "/fhir/Practitioner/nobody",
        "/fhir/CareTeam/none",
        "/fhir/Consent/none",
        "/fhir/AuditEvent/999999999",
        "/v1/alerts/nothing",
    ],
)
def test_unknown_ids_are_404(base_url: str, seeded: Seeded, path: str) -> None:
    response = httpx.get(base_url + path, headers=_member_a(seeded))
    assert response.status_code == 404, response.text


def test_rate_limit_per_token_answers_429_with_retry_after(
    record_engine: sa.Engine, seeded: Seeded
) -> None:
    with serve(record_engine, rate_burst=3, rate_per_s=0.5) as base:
        mine = _member_a(seeded)
        other = {"Authorization": "Bearer " + token(Actor.MEMBER, seeded.member_b, "user/*.read")}
        codes_seen = [
            httpx.get(f"{base}/fhir/Practitioner", headers=mine).status_code for _ in range(4)
        ]
        assert codes_seen == [200, 200, 200, 429]
        limited = httpx.get(f"{base}/fhir/Practitioner", headers=mine)
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 2
        assert validated(limited.json())["issue"][0]["code"] == "throttled"  # type: ignore[index]
        assert httpx.get(f"{base}/fhir/Practitioner", headers=other).status_code == 200  # per token
        anonymous = [httpx.get(f"{base}/fhir/Practitioner").status_code for _ in range(4)]
        assert anonymous == [401, 401, 401, 429]  # guessing without a token is limited too


def test_no_patient_or_reading_in_logs_above_debug(
    base_url: str, seeded: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = _member_a(seeded)
    for path in (
        "/fhir/Observation?patient=P1",
        f"/fhir/Observation/{seeded.bp_reading}",
        "/fhir/Patient/P1",
        "/fhir/Observation?patient=P1&date=nonsense",
        f"/v1/alerts/{seeded.alert_p1}",
        "/fhir/Observation?patient=P2",  # denied
    ):
        httpx.get(base_url + path, headers=headers)
    # the server's loggers (the test's own HTTP client logs its URLs: not the server's)
    loud = [
        # the access line's duration ("in 12.6 ms") is not a reading value
        re.sub(r" in [0-9.]+ ms$", "", r.getMessage())
        for r in caplog.records
        if r.levelno > logging.DEBUG and not r.name.startswith(("httpx", "httpcore"))
    ]
    assert any("/fhir/Observation" in m for m in loud)  # the access log line is there...
    canaries = ("P1", "P2", "Patient P1", seeded.bp_reading, seeded.alert_p1, "151", "2.6")
    for message in loud:  # ...without ids or values
        assert not any(c in message for c in canaries), message


def test_resources_validate_across_every_search(base_url: str, seeded: Seeded) -> None:
    p1 = {"Authorization": "Bearer " + token(Actor.PATIENT, "P1", "patient/*.read")}
    for path, who in [
        ("/fhir/Patient", _member_a(seeded)),
        ("/fhir/Device?patient=P1", _member_a(seeded)),
        ("/fhir/Flag", _member_a(seeded)),
        ("/fhir/Consent", _member_a(seeded)),
        ("/fhir/CareTeam", _member_a(seeded)),
        ("/fhir/Practitioner", _member_a(seeded)),
        ("/fhir/AuditEvent", _member_a(seeded)),
        ("/fhir/Observation", p1),
        ("/fhir/AuditEvent", p1),
        ("/fhir/Consent", p1),
    ]:
        bundle = _get(base_url, path + ("&" if "?" in path else "?") + "_count=100", who)
        for entry in bundle.get("entry", []):  # type: ignore[attr-defined]
            validated(entry["resource"])
        assert bundle.get("entry"), path
    team = _get(base_url, f"/fhir/CareTeam/{seeded.team_a}", _member_a(seeded))
    refs = {p["member"]["reference"] for p in team["participant"]}  # type: ignore[attr-defined]
    assert f"Practitioner/{seeded.member_a}" in refs
    for ref in refs:
        practitioner = _get(base_url, f"/fhir/{ref}", p1)
        assert practitioner["active"] is True


def test_members_without_a_patient_see_their_granted_patients_only(
    base_url: str, seeded: Seeded
) -> None:
    b = {"Authorization": "Bearer " + token(Actor.MEMBER, seeded.member_b, "user/*.read")}
    observations = _get(base_url, "/fhir/Observation?_count=100", b)
    subjects = {e["resource"]["subject"]["reference"] for e in observations["entry"]}  # type: ignore[attr-defined]
    assert subjects == {"Patient/P1", "Patient/P2"}
    kinds = {_loinc(e["resource"]["code"]) for e in observations["entry"]}  # type: ignore[attr-defined]
    assert kinds == {"14743-9"}  # glucose is all team B may see of P1; P2 has only glucose
    patients = _get(base_url, "/fhir/Patient", b)
    assert {e["resource"]["id"] for e in patients["entry"]} == {"P1", "P2"}  # type: ignore[attr-defined]
    assert UTC
