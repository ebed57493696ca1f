"""Data freshness: technical alarms when data stops arriving (hub offline, device silent,
pipeline behind), kept apart from clinical rules and from patient adherence."""
