"""FHIR search parameters (pure): what each resource type accepts, and their parsing.

Strict handling: an unknown or repeated parameter, a malformed value or an unsupported prefix is
an `InvalidRequestError` naming the parameter (the route answers 400 with an OperationOutcome),
never silently ignored. Supported:

- ``patient`` (``P1`` or ``Patient/P1``), ``code`` (``system|code``, ``|code`` or ``code``; a
  comma-separated list is any of them), ``date`` (prefix ``ge``/``gt``/``le``/``lt``/``eq`` or
  none, on a date of precision year, month, day or an instant with a zone; up to two),
  ``status`` (Flag: ``active``/``inactive``), ``agent`` (AuditEvent: ``Practitioner/ID``,
  ``Patient/ID`` or a bare id), ``_count`` (1 or more, capped at the server's maximum) and
  ``_cursor`` (the opaque page position a ``next`` link carries).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from api.errors import InvalidRequestError
from api.fhir.ids import from_fhir_id

# Search parameters per resource type (documented in the CapabilityStatement).
SEARCH_PARAMS: Final[Mapping[str, Mapping[str, str]]] = {
    "Patient": {"_id": "token"},
    "Practitioner": {"_id": "token"},
    "CareTeam": {"_id": "token"},
    "Device": {"patient": "reference"},
    "Observation": {"patient": "reference", "code": "token", "date": "date"},
    "Flag": {"patient": "reference", "status": "token"},
    "Consent": {"patient": "reference"},
    "AuditEvent": {"patient": "reference", "agent": "reference"},
}
COMMON: Final = frozenset({"_count", "_cursor"})
_DATE: Final = re.compile(
    r"^(eq|ge|gt|le|lt)?(\d{4})(?:-(\d{2})(?:-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?"
    r"(?:Z|[+-]\d{2}:\d{2}))?)?)?$"
)
_TOKEN: Final = re.compile(r"^[^\s|,]{1,200}$")
_MAX_VALUE: Final = 400


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed search. Times are aware UTC; `date_from` inclusive, `date_to` exclusive."""

    resource_type: str
    count: int
    patient: str | None = None
    codes: tuple[tuple[str | None, str], ...] = ()
    date_from: datetime | None = None
    date_to: datetime | None = None
    status: str | None = None
    agent: tuple[str | None, str] | None = None
    ids: tuple[str, ...] = ()
    cursor: tuple[object, ...] | None = None


def _single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestError(name, "may be given once")
    value = values[0]
    if not value or len(value) > _MAX_VALUE:
        raise InvalidRequestError(name, f"must be 1 to {_MAX_VALUE} characters")
    return value


def _reference(name: str, value: str, types: tuple[str, ...]) -> tuple[str | None, str]:
    kind: str | None = None
    raw = value
    if "/" in value:
        kind, _, raw = value.partition("/")
        if kind not in types:
            raise InvalidRequestError(name, f"must reference {' or '.join(types)}")
    record_id = from_fhir_id(raw)
    if record_id is None:
        raise InvalidRequestError(name, "is not a valid id")
    return kind, record_id


def _codes(value: str) -> tuple[tuple[str | None, str], ...]:
    out: list[tuple[str | None, str]] = []
    for item in value.split(","):
        system, bar, code = item.rpartition("|")
        if not bar:
            system, code = "", item
        if not _TOKEN.fullmatch(code) or (system and not _TOKEN.fullmatch(system)):
            raise InvalidRequestError("code", "must be system|code, |code or code")
        out.append((system or None, code))
    return tuple(out)


def _date_range(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) of a date value: the instant or period it names, end exclusive."""
    # An unescaped "+" of a zone arrives as a space: take it as the "+" it was.
    match = _DATE.fullmatch(value.replace(" ", "+"))
    if match is None:
        raise InvalidRequestError(
            "date", "must be [ge|gt|le|lt|eq]YYYY[-MM[-DD[Thh:mm[:ss]±zone]]]"
        )
    prefix, year, month, day, time = match.groups()
    try:
        if time:
            start = datetime.fromisoformat(f"{year}-{month}-{day}{time}").astimezone(UTC)
            return prefix or "eq", start, start + timedelta(microseconds=1)
        y, m, d = int(year), int(month or 1), int(day or 1)
        start = datetime(y, m, d, tzinfo=UTC)
        if day:
            end = start + timedelta(days=1)
        elif month:
            end = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
        else:
            end = datetime(y + 1, 1, 1, tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidRequestError("date", "is not a real date or time") from None
    return prefix or "eq", start, end


def _dates(values: Sequence[str]) -> tuple[datetime | None, datetime | None]:
    if len(values) > 2:
        raise InvalidRequestError("date", "may be given at most twice (a lower and upper bound)")
    lo: datetime | None = None
    hi: datetime | None = None
    for value in values:
        prefix, start, end = _date_range(value)
        bounds = {
            "ge": (start, None),
            "gt": (end, None),
            "le": (None, end),
            "lt": (None, start),
            "eq": (start, end),
        }[prefix]
        if bounds[0] is not None:
            lo = bounds[0] if lo is None else max(lo, bounds[0])
        if bounds[1] is not None:
            hi = bounds[1] if hi is None else min(hi, bounds[1])
    return lo, hi


def encode_cursor(values: Sequence[object]) -> str:
    """The opaque ``_cursor`` of a page position (JSON list of str/int/float)."""
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor(value: str) -> tuple[object, ...]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        decoded = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidRequestError("_cursor", "is not a page position this server gave") from None
    if (
        not isinstance(decoded, list)
        or not decoded
        or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in decoded)
        or any(isinstance(v, int) and not 0 <= v < 2**62 for v in decoded)
        or any(isinstance(v, str) and len(v) > 100 for v in decoded)
    ):
        raise InvalidRequestError("_cursor", "is not a page position this server gave")
    return tuple(decoded)


def parse_search(
    resource_type: str,
    params: Mapping[str, Sequence[str]],
    *,
    default_count: int,
    max_count: int,
) -> Search:
    """Parse the query parameters of a search on `resource_type`.

    Raises:
        InvalidRequestError: an unknown, repeated or malformed parameter (names it).
    """
    allowed = SEARCH_PARAMS[resource_type]
    for name in params:
        if name not in allowed and name not in COMMON:
            raise InvalidRequestError(name, f"is not a search parameter of {resource_type}")
    count_text = _single(params, "_count")
    count = default_count
    if count_text is not None:
        if not count_text.isdigit() or len(count_text) > 6 or int(count_text) < 1:
            raise InvalidRequestError("_count", "must be a whole number of at least 1")
        count = min(int(count_text), max_count)
    patient = _single(params, "patient")
    code = _single(params, "code")
    status = _single(params, "status")
    if status is not None and status not in ("active", "inactive"):
        raise InvalidRequestError("status", "must be active or inactive")
    agent = _single(params, "agent")
    ids_text = _single(params, "_id")
    ids: tuple[str, ...] = ()
    if ids_text is not None:
        found = [from_fhir_id(v) for v in ids_text.split(",")]
        if any(v is None for v in found):
            raise InvalidRequestError("_id", "is not a valid id")
        ids = tuple(v for v in found if v is not None)
    cursor_text = _single(params, "_cursor")
    date_from, date_to = _dates(params.get("date", ()))
    return Search(
        resource_type=resource_type,
        count=count,
        patient=_reference("patient", patient, ("Patient",))[1] if patient else None,
        codes=_codes(code) if code else (),
        date_from=date_from,
        date_to=date_to,
        status=status,
        agent=_reference("agent", agent, ("Practitioner", "Patient", "Device")) if agent else None,
        ids=ids,
        cursor=_cursor(cursor_text) if cursor_text else None,
    )
