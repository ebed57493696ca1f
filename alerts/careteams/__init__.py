"""The care-team record: institutions, care teams, members, followed patients, webhook endpoints."""
