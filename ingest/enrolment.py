"""Enrolment enforcement: a reading is kept only from an enrolled hub for one of its patients
(pure: the enrolments come in).

Ingest looks up, once per batch, which patients each gateway of the batch may report
(`careteam.enrolment_store.enrolled_patients`: one indexed query; no cache, so an unenrolment
or a revocation counts from the next batch on). Everything else is quarantined with reason
``not_enrolled`` (field ``gateway_id`` for a hub that is not enrolled or was revoked,
``patient_id`` for a patient the hub does not serve) and receipted as quarantined, so the hub
stops resending it and the reading is kept, not lost. A hub's pairing events are held to the
same rule (`split_pairings`): one that names a patient the hub does not serve is quarantined
and receipted, and never reaches the device registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from devices.reading import Reading, reading_to_json
from devices.wire import PairingEvent, pairing_to_json, pairings_topic
from ingest.rows import QuarantineItem, rejected_payload

NOT_ENROLLED: Final = "not_enrolled"


@dataclass(frozen=True, slots=True)
class Split:
    """Readings an enrolment allows, and quarantine items for the rest."""

    kept: list[Reading]
    refused: list[QuarantineItem]


def split_enrolled(
    readings: Sequence[Reading], enrolled: Mapping[str, frozenset[str]], topic_of: Mapping[str, str]
) -> Split:
    """Split `readings` by `enrolled` (gateway id -> the patients it may report).

    `topic_of` maps a gateway id to the topic its readings came on (kept with the quarantine row).
    """
    kept: list[Reading] = []
    refused: list[QuarantineItem] = []
    for reading in readings:
        patients = enrolled.get(reading.gateway_id)
        if patients is not None and reading.patient_id in patients:
            kept.append(reading)
            continue
        field = "gateway_id" if patients is None else "patient_id"
        refused.append(
            QuarantineItem(
                topic_of.get(reading.gateway_id, ""),
                rejected_payload(reading_to_json(reading)),
                field,
                NOT_ENROLLED,
                gateway_id=reading.gateway_id,
                reading_id=reading.reading_id,
            )
        )
    return Split(kept, refused)


def split_pairings(
    events: Mapping[str, Sequence[PairingEvent]], enrolled: Mapping[str, frozenset[str]]
) -> tuple[dict[str, list[PairingEvent]], list[QuarantineItem]]:
    """Per gateway, the pairing events it may report (an enrolled hub, every patient of the
    event one it serves), in order; quarantine items for the rest."""
    kept: dict[str, list[PairingEvent]] = {}
    refused: list[QuarantineItem] = []
    for gateway_id, items in events.items():
        patients = enrolled.get(gateway_id)
        for event in items:
            if patients is not None and set(event.patient_ids) <= patients:
                kept.setdefault(gateway_id, []).append(event)
                continue
            refused.append(
                QuarantineItem(
                    pairings_topic(gateway_id),
                    rejected_payload(pairing_to_json(event)),
                    "gateway_id" if patients is None else "patient_id",
                    NOT_ENROLLED,
                    gateway_id=gateway_id,
                )
            )
    return kept, refused
