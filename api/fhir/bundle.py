"""Searchset Bundles, OperationOutcomes and the CapabilityStatement (pure JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from api.fhir.observation import iso
from api.fhir.search import SEARCH_PARAMS

FHIR_VERSION: Final = "4.0.1"
FHIR_JSON: Final = "application/fhir+json"
SMART_SERVICE: Final = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def searchset(
    base_url: str,
    resource_type: str,
    resources: Sequence[Mapping[str, object]],
    *,
    self_url: str,
    next_url: str | None,
) -> dict[str, object]:
    """A searchset Bundle of `resources`, with a `next` link when there is another page."""
    base = base_url.rstrip("/")
    links: list[dict[str, object]] = [{"relation": "self", "url": self_url}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": dict(r),
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> dict[str, object]:
    """An OperationOutcome with one issue."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def capability_statement(base_url: str, *, published: datetime) -> dict[str, object]:
    """The server's CapabilityStatement: the resources, interactions and search parameters."""
    resources = []
    for resource_type, params in SEARCH_PARAMS.items():
        search_params = [{"name": name, "type": kind} for name, kind in params.items()]
        search_params.append({"name": "_count", "type": "number"})
        resources.append(
            {
                "type": resource_type,
                "interaction": [{"code": "read"}, {"code": "search-type"}],
                "searchParam": search_params,
            }
        )
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": iso(published),
        "publisher": "homevitals",
        "kind": "instance",
        "implementation": {"description": "homevitals care-team FHIR API", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [{"coding": [{"system": SMART_SERVICE, "code": "SMART-on-FHIR"}]}],
                    "description": "OAuth2 bearer JWTs with SMART on FHIR v1 scopes",
                },
                "resource": resources,
            }
        ],
    }
