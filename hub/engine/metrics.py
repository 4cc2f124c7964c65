"""Prometheus metrics of the consumer engine, labelled by service (`--metrics-port` serves them)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

RECORDS_CONSUMED = Counter("hub_records_consumed_total", "Records read from Kafka", ["service", "topic"])
EFFECTS_APPLIED = Counter("hub_effects_applied_total", "New events applied in committed transactions", ["service"])
DUPLICATES_SKIPPED = Counter("hub_duplicates_skipped_total", "Events already processed (same event_id)", ["service"])
FEEDBACK_PUBLISHED = Counter("hub_outbox_published_total", "Outbox records delivered to Kafka", ["service", "topic"])
DEAD_LETTERED = Counter("hub_dead_lettered_total", "Records sent to the dead-letter topic", ["service", "topic"])
CONSUMER_LAG = Gauge("hub_consumer_lag", "High watermark minus position", ["service", "topic", "partition"])
OUTBOX_PENDING = Gauge("hub_outbox_pending", "Outbox records not yet delivered", ["service"])


def serve(port: int, address: str = "127.0.0.1") -> None:
    start_http_server(port, addr=address)
