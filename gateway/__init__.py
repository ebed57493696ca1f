"""The home hub: pairing registry, BLE sessions through bleak, clock provenance, the durable
SQLite outbox, MQTT 5 publishing with end-to-end receipts, and the local pairing page.

Composition root: `gateway.app` (`python -m gateway`, `homevitals gateway run`). The record
transfer logic itself lives in the pure core `devices.sessions`; this package moves its bytes.
"""
