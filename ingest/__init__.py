"""ingest: MQTT consumer, validation and quarantine, record store, receipts, time-series mirror.

Readings arrive as `hv.batch/1` payloads on `hv/v1/gw/{id}/readings`; each is validated into a
`devices.Reading` or quarantined, committed to the record store (the record of truth), and only
then acknowledged to the broker and receipted to its gateway. A mirror worker copies stored
readings to an InfluxDB-protocol time-series server from a persisted cursor.
"""

from ingest.errors import IngestConfigError, IngestError, MirrorError, StoreError

__all__ = ["IngestConfigError", "IngestError", "MirrorError", "StoreError"]
