"""The hospital clinic's nurse on call: for each verified `alert.opened` webhook, follows its
`links.alert` to the alert's evidence in the care-team API and acknowledges it there, as a
clinician would from a phone (adapter: HTTP with a member's bearer token).

Both requests go through the API's gate (scope, the patient's consent, the audit trail), so the
acknowledgement is attributable: the alert records which member, and the audit trail who read
what.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx

from api import tokens
from api.settings import load_settings
from homevitals.demo_report import Webhook

log = logging.getLogger(__name__)

SCOPE = "user/Flag.read user/Flag.write user/Observation.read user/Patient.read"
TIMEOUT_S = 15.0
ATTEMPTS = 5  # the API answers 503 while SQLite is busy with another writer: try again
RETRY_S = 0.5


@dataclass(frozen=True)
class Acknowledged:
    """An alert the nurse acknowledged, with what she saw."""

    alert_id: str
    patient_id: str | None
    rule_id: str | None
    evidence_readings: int


@dataclass
class Nurse:
    """Acknowledges alerts through the API as one care-team member."""

    api_url: str
    signing_key: str
    member_id: str
    done: dict[str, Acknowledged] = field(default_factory=dict)

    def _token(self) -> str:
        settings = load_settings(signing_key=self.signing_key, environment="development")
        return tokens.issue(
            settings.token_key(),
            tokens.Actor.MEMBER,
            self.member_id,
            SCOPE,
            now=datetime.now(UTC),
            ttl=timedelta(minutes=10),
        )

    async def handle(self, hook: Webhook) -> Acknowledged | str | None:
        """Acknowledge the alert a webhook announces; the acknowledgement, why not (an
        answer of the API), or None for webhooks that ask for nothing."""
        if hook.type != "alert.opened" or not hook.alert_id or hook.alert_id in self.done:
            return None
        link = hook.alert_link or f"{self.api_url}/v1/alerts/{hook.alert_id}"
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers) as http:
                detail = await _request(http, "GET", link)
                if detail.status_code != 200:
                    return f"GET {link}: HTTP {detail.status_code} {detail.text[:200]}"
                evidence = detail.json().get("evidence", {})
                readings = evidence.get("reading_ids", []) if isinstance(evidence, dict) else []
                note = {"note": "Seen; calling the patient today."}
                ack = await _request(http, "POST", f"{link}/acknowledge", note)
                if ack.status_code != 200:
                    return f"acknowledge: HTTP {ack.status_code} {ack.text[:200]}"
        except httpx.HTTPError as exc:
            return f"the API could not be reached: {exc}"
        done = Acknowledged(hook.alert_id, hook.patient_id, hook.rule_id, len(readings))
        self.done[hook.alert_id] = done
        return done


async def _request(
    http: httpx.AsyncClient, method: str, url: str, body: dict[str, str] | None = None
) -> httpx.Response:
    """One request, tried again while the API says it is busy (503, 429)."""
    for attempt in range(1, ATTEMPTS + 1):
        answer = await http.request(method, url, json=body)
        if answer.status_code not in (429, 503) or attempt == ATTEMPTS:
            return answer
        await asyncio.sleep(RETRY_S * attempt)
    raise AssertionError("unreachable")
