"""Pure parts of the API: ids, rate limits, search parsing, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.errors import ApiConfigError, InvalidRequestError
from api.fhir.ids import from_fhir_id, gateway_device_id, to_fhir_id
from api.fhir.search import encode_cursor, parse_search
from api.ratelimit import TokenBuckets
from api.settings import is_placeholder, load_settings


@pytest.mark.parametrize("record_id", ["P1", "patient-1", "a.b", "a_b:c", "x.2e", "A" * 64])
def test_fhir_ids_round_trip(record_id: str) -> None:
    fhir_id = to_fhir_id(record_id)
    assert all(c.isalnum() or c in "-." for c in fhir_id)
    assert from_fhir_id(fhir_id) == record_id


def test_fhir_ids_that_name_no_record_are_refused() -> None:
    assert from_fhir_id("a_b") is None  # not a FHIR id
    assert from_fhir_id("a.b") is None  # an unescaped dot is never produced
    assert from_fhir_id("-leading") is None
    assert gateway_device_id("gw-1") != gateway_device_id("gw-2")


def test_token_buckets_refuse_past_the_burst_and_refill() -> None:
    buckets = TokenBuckets(rate_per_s=2.0, burst=3)
    assert [buckets.take("t", 0.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("t", 0.0) == 1
    assert buckets.take("other", 0.0) is None  # per key
    assert buckets.take("t", 0.5) is None  # one refilled after 0.5 s at 2/s
    assert buckets.take("t", 0.5) == 1


def _search(resource: str, **params: list[str]) -> object:
    return parse_search(resource, params, default_count=50, max_count=200)


def test_search_parses_patient_code_dates_and_count() -> None:
    search = parse_search(
        "Observation",
        {
            "patient": ["Patient/P1"],
            "code": ["http://loinc.org|85354-9,8867-4"],
            "date": ["ge2026-02-15", "le2026-03-01"],
            "_count": ["500"],
        },
        default_count=50,
        max_count=200,
    )
    assert search.patient == "P1"
    assert search.codes == (("http://loinc.org", "85354-9"), (None, "8867-4"))
    assert search.date_from == datetime(2026, 2, 15, tzinfo=UTC)
    assert search.date_to == datetime(2026, 3, 2, tzinfo=UTC)  # le a day: through its end
    assert search.count == 200  # capped


def test_search_dates_with_instants_and_month_precision() -> None:
    search = parse_search(
        "Observation",
        {"date": ["gt2026-02-15T08:00:00+08:00", "lt2026-03"]},
        default_count=50,
        max_count=200,
    )
    assert search.date_from == datetime(2026, 2, 15, 0, 0, 0, 1, tzinfo=UTC)
    assert search.date_to == datetime(2026, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("resource", "params", "field"),
    [
        ("Observation", {"subject": ["P1"]}, "subject"),
        ("Observation", {"patient": ["P1", "P2"]}, "patient"),
        ("Observation", {"patient": ["Device/P1"]}, "patient"),
        ("Observation", {"patient": ["a_b"]}, "patient"),
        ("Observation", {"date": ["2026-13-01"]}, "date"),
        ("Observation", {"date": ["ne2026-01-01"]}, "date"),
        ("Observation", {"date": ["2026-01-01T10:00"]}, "date"),  # no zone
        ("Observation", {"date": ["ge2026", "le2027", "ge2025"]}, "date"),
        ("Observation", {"_count": ["0"]}, "_count"),
        ("Observation", {"_count": ["ten"]}, "_count"),
        ("Observation", {"code": ["a|b|"]}, "code"),
        ("Observation", {"_cursor": ["%%%"]}, "_cursor"),
        ("Observation", {"_cursor": [encode_cursor([]) or "W10"]}, "_cursor"),
        ("Flag", {"status": ["open"]}, "status"),
        ("AuditEvent", {"agent": ["Organization/x"]}, "agent"),
        ("Patient", {"patient": ["P1"]}, "patient"),
    ],
)
def test_malformed_search_parameters_name_the_parameter(
    resource: str, params: dict[str, list[str]], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_search(resource, params, default_count=50, max_count=200)
    assert caught.value.field == field


def test_settings_need_a_long_real_key_outside_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ApiConfigError, match="HV_API_SIGNING_KEY: is required"):
        load_settings()
    with pytest.raises(ApiConfigError, match="at least 32"):
        load_settings(signing_key="short")
    placeholder = "changeme-changeme-changeme-changeme"
    assert is_placeholder(placeholder)
    with pytest.raises(ApiConfigError, match="placeholder"):
        load_settings(signing_key=placeholder)
    assert load_settings(signing_key=placeholder, environment="development").environment == (
        "development"
    )
    monkeypatch.setenv("HV_API_SIGNING_KEYS", "x")
    with pytest.raises(ApiConfigError, match="HV_API_SIGNING_KEYS: is not a known setting"):
        load_settings(signing_key="q8Zr3vN1xT5mK7pL2wC9bF4hJ6dS0aYe")
