"""Prometheus metrics of the consumer engine, labelled by service (`--metrics-port` serves them).

Every series a service will have is made when it starts, at 0 (`initialise`): a scrape right after the start
shows every metric with a value, and a rate over a counter that has not moved yet is 0, not missing. The
per-partition lag appears with each partition's assignment and goes with its revocation.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from hub.config import ConfigError

RECORDS_CONSUMED = Counter(
    "hub_records_consumed_total", "Records read from Kafka, in committed batches", ["service", "topic"]
)
EFFECTS_APPLIED = Counter(
    "hub_effects_applied_total",
    "Events processed for the first time (their event_id new to the service) in committed transactions",
    ["service"],
)
DUPLICATES_SKIPPED = Counter(
    "hub_duplicates_skipped_total", "Events already processed (same event_id): no effect again", ["service"]
)
FEEDBACK_PUBLISHED = Counter(
    "hub_outbox_published_total", "Outbox records delivered to Kafka (acknowledged)", ["service", "topic"]
)
DEAD_LETTERED = Counter(
    "hub_dead_lettered_total",
    "Records that could not be decoded or validated, sent to the dead-letter topic (by source topic)",
    ["service", "topic"],
)
CONSUMER_LAG = Gauge(
    "hub_consumer_lag",
    "Records on an assigned partition not yet processed: the high watermark minus the next offset the service "
    "will process (0 when caught up)",
    ["service", "topic", "partition"],
)
OUTBOX_PENDING = Gauge(
    "hub_outbox_pending", "Outbox records not yet delivered (read from the outbox table)", ["service"]
)
BATCH_DURATION = Histogram(
    "hub_batch_duration_seconds",
    "Time to write one batch: its database transaction (effects, processed ids, outbox, offsets) to the commit",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
RECORD_AGE = Histogram(
    "hub_record_age_seconds",
    "Age of a record when its batch commits: now minus the broker's timestamp of the record",
    ["service", "topic"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0),
)


def initialise(service: str, reads: Iterable[str] = (), writes: Iterable[str] = ()) -> None:
    """Make the service's series at 0: per topic it reads (consumed, dead-lettered, record age) and per topic it
    writes (published). Idempotent; topics found later (a new agency's feedback for the ledger) are added so."""
    EFFECTS_APPLIED.labels(service)
    DUPLICATES_SKIPPED.labels(service)
    BATCH_DURATION.labels(service)
    for topic in reads:
        RECORDS_CONSUMED.labels(service, topic)
        DEAD_LETTERED.labels(service, topic)
        RECORD_AGE.labels(service, topic)
    for topic in writes:
        FEEDBACK_PUBLISHED.labels(service, topic)


def check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise ConfigError(f"--metrics-port {port}: must be 1-65535")


def serve(port: int, address: str = "127.0.0.1") -> None:
    """Listen on address:port, or a ConfigError saying why not (the port taken, out of range, the address)."""
    check_port(port)
    try:
        start_http_server(port, addr=address)
    except OSError as exc:
        raise _cannot_listen(port, address, exc) from None


def check_free(port: int, address: str = "127.0.0.1") -> None:
    """Whether `serve` could listen there now, or the ConfigError it would raise: a supervisor asks this for every
    worker's port before it starts any worker."""
    check_port(port)
    try:
        family, kind, proto, _name, where = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server does
            probe.bind(where)
    except OSError as exc:
        raise _cannot_listen(port, address, exc) from None


def _cannot_listen(port: int, address: str, exc: OSError) -> ConfigError:
    if exc.errno == errno.EADDRINUSE:
        return ConfigError(f"--metrics-port {port}: the port is in use on {address}")
    if exc.errno == errno.EACCES:
        return ConfigError(f"--metrics-port {port}: permission denied on {address} (below 1024 needs privileges)")
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return ConfigError(f"--metrics-port {port}: {address} is not an address of this machine (HUB_METRICS_ADDRESS)")
    return ConfigError(f"--metrics-port {port}: cannot listen on {address}: {exc.strerror or exc}")
