"""Simulated court events for the benchmarks, made and published in chunks so that a million never sit in memory."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator

from bench.common import say
from hub.codec import default_codec
from hub.config import Settings
from hub.domain.events import CourtEvent, parse_event
from producers.publisher import CourtPublisher, Outgoing
from producers.simulator import SimulationConfig, simulate

CHUNK_DEBTORS = 20_000  # about 64,000 events per simulated chunk


def court_events(count: int, seed: int) -> Iterator[CourtEvent]:
    """Exactly `count` validated court events, from independent simulated histories of CHUNK_DEBTORS debtors.

    Each chunk is a complete, time-ordered history with its own seed; the last one is cut at `count`. IDs are
    random, so a debtor ID may rarely recur in another chunk: harmless, as entries stay distinct.
    """
    produced = 0
    for chunk in itertools.count():
        debtors = min(CHUNK_DEBTORS, (count - produced) // 3 + 100)  # about 3.2 events per debtor
        config = SimulationConfig(debtors=debtors, seed=seed * 10_000 + chunk)
        for record in simulate(config).events:
            if produced >= count:
                return
            yield parse_event(record)  # type: ignore[misc]
            produced += 1


def publish(settings: Settings, events: Iterable[CourtEvent], count: int, label: str) -> float:
    """Publish with the hub's own publisher (idempotent, acks=all); returns the seconds it took, simulation
    included. Fails loudly on any undelivered event. Simulated histories are past events: a historical import."""
    publisher = CourtPublisher(settings, history=True)
    started = time.perf_counter()
    sent = 0
    for chunk in _chunks(events, 50_000):
        report = publisher.publish(chunk)
        if not report.ok:
            raise RuntimeError(f"{label}: {len(report.failures)} events not delivered, e.g. {report.failures[:3]}")
        sent += report.published
        if count >= 200_000:
            say(f"{label}: published {sent:,} of {count:,} ({sent / (time.perf_counter() - started):,.0f}/s)")
    if sent != count:
        raise RuntimeError(f"{label}: published {sent:,} events, expected {count:,}")
    return time.perf_counter() - started


def prepared_sample(settings: Settings, count: int, seed: int) -> list[Outgoing]:
    """Encoded records exactly as the court publisher sends them (key, Avro value, headers)."""
    publisher = CourtPublisher(settings)
    return [publisher.prepare(e) for e in court_events(count, seed)]


def mean_record_size(sample: list[Outgoing]) -> int:
    """The hub's record size for Kafka's perf tools: the mean encoded court event (value bytes)."""
    return round(sum(len(r.value) for r in sample) / len(sample))


def fill_cycling(settings: Settings, sample: list[Outgoing], count: int) -> float:
    """Put `count` hub records on the namespace's court topic by cycling `sample`: the Python limits need real
    records to consume and decode, but not a million distinct simulated histories."""
    publisher = CourtPublisher(settings)
    records = itertools.islice(itertools.cycle(sample), count)
    report = publisher.send(records, timeout=300.0)
    if not report.ok or report.published != count:
        raise RuntimeError(
            f"filling the limits topic: {report.published:,} of {count:,} delivered, {report.failures[:3]}"
        )
    return report.seconds


def _chunks(items: Iterable[CourtEvent], size: int) -> Iterator[list[CourtEvent]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def codec_check(sample: list[Outgoing]) -> None:
    """Cheap sanity check that the sample decodes as court events (the limits' decode loop depends on it)."""
    codec = default_codec()
    for record in sample[:100]:
        codec.decode_event(record.value, "court")
