"""Webhook delivery of alert events to care teams (Standard Webhooks, transactional outbox).

The rules engine hands its events to `alerts.delivery.outbox.enqueue_events` inside its own
transaction; `alerts.delivery.worker` signs and POSTs them with retries; acknowledgements and
escalation live in `alerts.delivery.confirmation`. `python -m alerts.delivery` runs the worker.
"""
