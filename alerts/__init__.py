"""Alerts: rules engine, alert lifecycle, delivery to care teams, and the care-team record."""
