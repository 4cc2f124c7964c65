"""`hub audit replay`: what was in force, and what the hub knew, rebuilt from the topics alone (docs/design.md §9).

Every topic is keyed by debtor and co-partitioned, so one entry's court events and every agency's
feedback about it share a partition number: partitions are replayed in parallel worker processes and
their results merged, giving exactly the result (and digest) of one sequential pass.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import re
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from hub.acl import AUDITOR
from hub.clients import admin
from hub.codec import Codec, CodecError, codec_for, default_codec, future_dated, is_historical
from hub.config import Settings
from hub.domain.events import EventValidationError
from hub.domain.history import Recorded, by_agency, digest, entry_states, sanction_supports
from hub.ledger.service import feedback_subscription
from hub.readback import end_offsets, read_range, read_ranges, reader
from hub.topics import CHECKPOINTS, COURT_EVENTS

Progress = Callable[[int | None, int], None]
EPOCH = dt.datetime.fromtimestamp(0, dt.UTC)


@dataclass
class TopicHistory:
    """Everything decodable on the hub's topics, with broker timestamps; what was not decodable, counted."""

    court: list[Recorded] = field(default_factory=list)
    feedback: list[Recorded] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    undecodable: int = 0  # not decodable or not valid: dead-lettered by the services
    records: int = 0
    clashes: int = 0  # entry ids used on more than one partition, i.e. for more than one debtor


def feedback_topics(settings: Settings) -> list[str]:
    pattern = re.compile(feedback_subscription(settings))
    return sorted(t for t in admin(settings, AUDITOR).list_topics(timeout=15).topics if pattern.match(t))


def _sources(settings: Settings) -> list[tuple[str, str]]:
    return [(settings.topic(COURT_EVENTS), "court")] + [(t, "feedback") for t in feedback_topics(settings)]


def _read_partitions(
    settings: Settings,
    codec: Codec,
    sources: list[tuple[str, str]],
    ends: dict[str, dict[int, int]],
    partitions: set[int] | None,
    histories: dict[int, TopicHistory],
    progress: Progress | None = None,
    total: int | None = None,
    client: Consumer | None = None,
) -> int:
    """Decode the given partition numbers (None: all) of every source topic into one history per partition.

    One consumer reads them all; returns the number of records read.
    """
    families = dict(sources)
    tolerance = dt.timedelta(seconds=settings.clock_tolerance_seconds)
    ranges = {
        (topic, p): (0, end)
        for topic, _family in sources
        for p, end in ends[topic].items()
        if partitions is None or p in partitions
    }
    read = 0
    for record in read_ranges(settings, ranges, client=client):
        read += 1
        if progress and read % 5000 == 0:
            progress(total, read)
        history = histories.setdefault(record.partition, TopicHistory())
        history.records += 1
        family = families[record.topic]
        try:
            event = codec.decode_event(record.value, family)
        except (CodecError, EventValidationError):
            history.undecodable += 1
            continue
        if future_dated(event, record.timestamp_ms, tolerance):
            history.undecodable += 1  # dead-lettered by every service: never in effect
            continue
        at = dt.datetime.fromtimestamp(record.timestamp_ms / 1000, dt.UTC)
        recorded = Recorded(event, at, read, is_historical(record.headers))
        (history.court if family == "court" else history.feedback).append(recorded)
    return read


def read_history(settings: Settings, codec: Codec | None = None, progress: Progress | None = None) -> TopicHistory:
    """Every topic from offset 0 to its current end, in one process (what `verify` compares against)."""
    codec = codec or default_codec()
    sources = _sources(settings)
    ends = {topic: end_offsets(settings, topic) for topic, _family in sources}
    total = sum(sum(e.values()) for e in ends.values())
    parts: dict[int, TopicHistory] = {}
    read = _read_partitions(settings, codec, sources, ends, None, parts, progress, total)
    if progress:
        progress(total, read)
    history = TopicHistory(records=read)
    for part in parts.values():
        history.court.extend(part.court)
        history.feedback.extend(part.feedback)
        history.undecodable += part.undecodable
    history.court.sort(key=lambda r: r.position)
    history.feedback.sort(key=lambda r: r.position)
    for record in read_range(settings, settings.topic(CHECKPOINTS)):
        try:
            name, checkpoint = codec.decode(record.value)
        except CodecError:
            history.undecodable += 1
            continue
        if name == "Checkpoint":
            history.checkpoints.append(checkpoint)
    return history


def latest_record_time(settings: Settings, ends: dict[str, dict[int, int]]) -> dt.datetime:
    """The broker time of the newest record on the topics, asked of the broker (no reading needed)."""
    wanted = {TopicPartition(t, p): OffsetSpec.max_timestamp() for t, e in ends.items() for p, end in e.items() if end}
    if not wanted:
        return EPOCH
    client = admin(settings, AUDITOR)  # held until the answers are in: a dropped client abandons its requests
    stamps = [future.result(timeout=30).timestamp for future in client.list_offsets(wanted).values()]
    newest = max((s for s in stamps if s is not None and s >= 0), default=0)
    return dt.datetime.fromtimestamp(newest / 1000, dt.UTC)


@dataclass
class _PartitionResult:
    entries: dict[str, dict[str, Any]]
    supports: set[tuple[str, str, str]]
    records: int
    undecodable: int


def _replay_share(
    settings: Settings,
    sources: list[tuple[str, str]],
    ends: dict[str, dict[int, int]],
    partitions: list[int],
    as_of: dt.datetime,
    known_at: dt.datetime,
) -> dict[int, _PartitionResult]:
    """One worker's share of the partition numbers, folded partition by partition."""
    codec = codec_for(settings.schema_dir)
    # A partition's history is many long-lived objects without cycles: collecting would only churn, and
    # reference counting frees each partition's once it is folded.
    gc.disable()
    client = reader(settings)
    results = {}
    try:
        for partition in partitions:  # one at a time: memory holds one partition's history, not the share's
            histories: dict[int, TopicHistory] = {}
            _read_partitions(settings, codec, sources, ends, {partition}, histories, client=client)
            h = histories.get(partition, TopicHistory())
            results[partition] = _PartitionResult(
                entry_states(h.court, as_of, known_at),
                sanction_supports(h.feedback, as_of, known_at),
                h.records,
                h.undecodable,
            )
            del histories, h
    finally:
        client.close()
    return results


def replay(
    settings: Settings,
    as_of: dt.datetime | None = None,
    known_at: dt.datetime | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
) -> tuple[dict[str, Any], TopicHistory]:
    """The canonical reconstruction and its SHA-256 digest; the same topics and times give the same digest.

    Defaults: known_at is the broker time of the newest record, as_of is known_at, so that replaying
    unchanged topics twice gives the same digest. The returned history carries the counts only.
    """
    sources = _sources(settings)
    ends = {topic: end_offsets(settings, topic) for topic, _family in sources}
    total = sum(sum(e.values()) for e in ends.values())
    known_at = known_at or latest_record_time(settings, ends)
    as_of = as_of or known_at
    partitions = sorted({p for e in ends.values() for p, end in e.items() if end})
    workers = max(1, min(workers or os.cpu_count() or 1, len(partitions) or 1))
    results: dict[int, _PartitionResult] = {}
    summary = TopicHistory()
    shares = [partitions[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_replay_share, settings, sources, ends, share, as_of, known_at) for share in shares]
        for future in as_completed(futures):
            for partition, part in future.result().items():
                results[partition] = part
                summary.records += part.records
                summary.undecodable += part.undecodable
            if progress:
                progress(total, summary.records)
    entries: dict[str, dict[str, Any]] = {}
    supports: set[tuple[str, str, str]] = set()
    for partition in sorted(results):  # merged in partition order, whatever order the workers finished in
        for entry_id, view in results[partition].entries.items():
            if entry_id in entries:
                summary.clashes += 1  # an entry id is unique to one debtor; the ledger reports the clash
                continue
            entries[entry_id] = view
        supports |= results[partition].supports
    result: dict[str, Any] = {
        "as_of": as_of.astimezone(settings.zone).isoformat(),
        "known_at": known_at.astimezone(settings.zone).isoformat(),
        "entries": dict(sorted(entries.items())),
        "sanctions": by_agency(supports),
    }
    result["digest"] = digest(result)
    return result, summary
