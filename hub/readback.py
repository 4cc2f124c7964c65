"""Read a topic between two offset marks, without a consumer group: for replays, demos and tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from hub.acl import AUDITOR
from hub.clients import consumer as make_consumer
from hub.config import Settings

_SETTLING = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,
}


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


def _probe(settings: Settings) -> Consumer:
    return reader(settings)


def reader(settings: Settings, principal: str = AUDITOR) -> Consumer:
    """A consumer for reading history in bulk (as the auditor, who reads everything and writes nothing): large
    fetches, and no long polls that would hold up the fetch of the next partition assigned."""
    return make_consumer(
        settings,
        f"{settings.namespace}hub-audit-{uuid.uuid4()}",
        principal,
        **{"max.partition.fetch.bytes": 16 << 20, "fetch.max.bytes": 64 << 20, "fetch.wait.max.ms": 10},
    )


def watermarks(probe: Consumer, topic: str, partition: int, timeout: float = 30.0) -> tuple[int, int]:
    """Low and high offsets, retrying the moments after creation when a leader is still settling."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        except KafkaException as exc:
            error = exc.args[0]
            settling = error.retriable() or error.code() in _SETTLING
            if not settling or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def end_offsets(settings: Settings, topic: str, probe: Consumer | None = None) -> dict[int, int]:
    own = probe is None
    probe = probe or _probe(settings)
    try:
        metadata = probe.list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise KafkaException(f"topic {topic} does not exist")
        return {p: watermarks(probe, topic, p)[1] for p in metadata.partitions}
    finally:
        if own:
            probe.close()


def read_range(
    settings: Settings,
    topic: str,
    start: dict[int, int] | None = None,
    end: dict[int, int] | None = None,
    idle_timeout: float = 30.0,
) -> Iterator[Record]:
    """Yield records of one topic from `start` (default: the beginning) up to `end` (default: the ends now)."""
    end = end if end is not None else end_offsets(settings, topic)
    start = start or {}
    yield from read_ranges(settings, {(topic, p): (start.get(p, 0), e) for p, e in end.items()}, idle_timeout)


def read_ranges(
    settings: Settings,
    ranges: dict[tuple[str, int], tuple[int, int]],
    idle_timeout: float = 30.0,
    client: Consumer | None = None,
) -> Iterator[Record]:
    """Yield the records of several topic-partitions, each from its start up to its end, with one consumer
    (a given one is reused and left open: setting one up costs a round of broker requests).

    Records of one partition come in offset order; partitions interleave.
    """
    pending = {tp: end for tp, (begin, end) in ranges.items() if begin < end}
    if not pending:
        return
    own = client is None
    client = client or _probe(settings)
    try:
        client.assign([TopicPartition(t, p, ranges[(t, p)][0] or OFFSET_BEGINNING) for t, p in pending])
        last_progress = time.monotonic()
        while pending:
            batch = client.consume(num_messages=5000, timeout=0.05)
            if batch:
                last_progress = time.monotonic()
            for message in batch:
                if message.error():
                    raise KafkaException(message.error())
                key = (message.topic(), message.partition())
                end = pending.get(key)
                if end is None or message.offset() >= end:
                    continue
                yield Record(
                    key[0],
                    key[1],
                    message.offset(),
                    message.timestamp()[1],
                    message.key(),
                    message.value(),
                    tuple(message.headers() or ()),
                )
                if message.offset() >= end - 1:
                    del pending[key]
            if not batch:
                for tp in client.position([TopicPartition(t, p) for t, p in pending]):
                    if tp.offset >= pending[(tp.topic, tp.partition)]:
                        del pending[(tp.topic, tp.partition)]
                if pending and time.monotonic() - last_progress > idle_timeout:
                    raise TimeoutError(f"no records for {idle_timeout:.0f}s before the end offsets: {sorted(pending)}")
    finally:
        if own:
            client.close()
