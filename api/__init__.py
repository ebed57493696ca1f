"""The care-team API: REST for alerts and the care-team record, FHIR R4 views of the record.

Layers (docs/architecture.md): pure cores decide (`scopes`, `tokens`, `ratelimit`, `fhir/*` mappings
and search parsing), thin adapters serve (`app`, `routes_*`, `store`), one composition root runs it
(`api.cli`: ``homevitals api run``, ``homevitals token issue``). A later `api/dashboard/`
sub-package serves the care-team dashboard behind the same tokens.
"""
