"""The one consumer engine shared by every agency and by the ledger (docs/design.md §7).

Per batch, one database transaction applies the handler's effects, records each processed event id
(a replayed or republished event changes nothing), writes the resulting messages to the outbox, and
stores the next offset of every partition. On assignment the engine seeks to the offsets stored in the
service's own database; Kafka's committed offsets are written too, for monitoring only. The stored
offsets are locked and compared inside the transaction, so two instances that briefly share a
partition during a rebalance never apply the same record twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import queue
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from hub import acl
from hub.clients import consumer as make_consumer
from hub.clients import idempotent_producer, is_fatal, wait_for_kafka
from hub.codec import Codec, CodecError, future_dated, is_historical
from hub.config import ConfigError, Settings
from hub.db import copy_rows, scratch_table
from hub.domain.events import Event, EventValidationError
from hub.engine import metrics, outbox
from hub.engine.outbox import OutboxMessage, OutboxRelay
from hub.log import get_logger
from hub.topics import DEAD_LETTER


@dataclass(slots=True)
class Delivered:
    """A decoded, valid event with where and when the broker stored it; one per record, never changed (not frozen:
    a frozen dataclass's __init__ costs a call per field, which showed in a profile)."""

    event: Event
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    historical: bool = False  # published as a historical import (header hub-import: history)

    @property
    def timestamp(self) -> dt.datetime:
        """The broker's timestamp (LogAppendTime); built on demand, as most services never need it."""
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, tz=dt.UTC)


@dataclass
class RunSummary:
    """What one run of a service did, counted from committed transactions and acknowledged deliveries only
    (`engine.summary`, logged at the end of `run()`; `line()` is the sentence for a person)."""

    service: str
    records_events: bool = False  # the ledger: it records events rather than answering them
    reads_only: bool = False  # a read model (the register): it neither answers nor records
    read: int = 0  # events read (valid or not), each once: records already applied by the service are not counted
    applied: int = 0  # an agency's SanctionApplied feedback
    lifted: int = 0  # SanctionLifted (a retention that ended by itself included)
    retained: int = 0  # SanctionRetained
    failed: int = 0  # SanctionFailed
    recorded: int = 0  # the ledger: events stored in the chain (a reused event id with new content included)
    dead_lettered: int = 0
    duplicates: int = 0  # events whose event_id the service had processed before: no effect again
    published: int = 0  # outbox records delivered, dead letters aside (an agency's feedback, the ledger's checkpoints)
    seconds: float = 0.0

    def line(self) -> str:
        if self.reads_only:
            return (
                f"{self.service}: read {self.read} events, {self.dead_lettered} dead-lettered, "
                f"{self.duplicates} duplicates skipped in {self.seconds:.1f}s"
            )
        if self.records_events:
            what = f"{self.recorded} recorded"
            published = f"{self.published} checkpoints published"
        else:
            what = f"{self.applied} applied, {self.lifted} lifted, {self.retained} retained, {self.failed} failed"
            published = f"{self.published} feedback published"
        return (
            f"{self.service}: read {self.read} events: {what}, {self.dead_lettered} dead-lettered, "
            f"{self.duplicates} duplicates skipped; {published} in {self.seconds:.1f}s"
        )

    def fields(self) -> dict[str, int | float]:
        """The counts that apply to this kind of service, for a structured log line."""
        kinds: tuple[str, ...] = ("recorded",) if self.records_events else ("applied", "lifted", "retained", "failed")
        if self.reads_only:
            kinds = ()
        names = ("read", *kinds, "dead_lettered", "duplicates", "published")
        return {**{name: getattr(self, name) for name in names}, "seconds": round(self.seconds, 2)}

    def count_feedback(self, messages: list[OutboxMessage]) -> None:
        for m in messages:
            kind = next((v for k, v in m.headers if k == "event-type"), None)
            if kind == "SanctionApplied":
                self.applied += 1
            elif kind == "SanctionLifted":
                self.lifted += 1
            elif kind == "SanctionRetained":
                self.retained += 1
            elif kind == "SanctionFailed":
                self.failed += 1


@dataclass
class _Batch:
    records: list[Message] = field(default_factory=list)  # everything consumed: offsets advance past all
    delivered: list[Delivered] = field(default_factory=list)
    dead: list[tuple[Message, str, str]] = field(default_factory=list)  # (record, error kind, reason)


class _Fetcher(threading.Thread):
    """Consumes and decodes the next batch while the engine's thread writes the current one.

    Decoding is CPU work and a transaction is mostly waiting for PostgreSQL (the GIL is free then), so
    overlapping them nearly doubles throughput. Rebalance callbacks run here, inside consume(); a batch
    prefetched for a partition that has moved on is harmless, because the transaction compares it with
    the offsets stored in the database.
    """

    def __init__(self, engine: ConsumerEngine, consumer: Consumer):
        super().__init__(name=f"fetch-{engine.service}", daemon=True)
        self.engine = engine
        self.consumer = consumer
        self.ready: queue.Queue[_Batch] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self._halt = threading.Event()
        self._idle = threading.Event()
        self._commits: dict[tuple[str, int], int] = {}
        self._commits_lock = threading.Lock()
        self._last_lag = 0.0

    def commit_later(self, offsets: dict[tuple[str, int], int]) -> None:
        """The Python consumer is not to be used from two threads at once: commits go through this one."""
        with self._commits_lock:
            self._commits.update(offsets)

    def _housekeeping(self) -> None:
        with self._commits_lock:
            commits, self._commits = self._commits, {}
        if commits:
            try:
                offsets = [TopicPartition(t, p, o) for (t, p), o in commits.items()]
                self.consumer.commit(offsets=offsets, asynchronous=True)
            except Exception as exc:  # a revoked partition, a coordinator moving: never fatal here
                self.engine.log.debug("informational offset commit skipped", error=str(exc))
        if self.engine.metrics_port is not None and (self.engine.lag_due or time.monotonic() - self._last_lag >= 5.0):
            self._last_lag = time.monotonic()
            self.engine.lag_due = False
            self.engine.report_lag(self.consumer)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                self._housekeeping()
                messages = self.consumer.consume(num_messages=self.engine.settings.batch_size, timeout=0.1)
                fatal = next((m.error() for m in messages if is_fatal(m.error())), None)
                if fatal is not None:
                    self._replace_consumer("consumer failed for good", error=fatal.str())
                    continue
                unassigned = self.engine.unassigned_for()
                if unassigned * 1000 > self.engine.settings.rejoin_after_ms:
                    self._replace_consumer("no partitions held", seconds=round(unassigned))
                    continue
                batch = self.engine.prepare(messages) if messages else None
                if batch is None:
                    self._idle.set()
                    continue
                self._idle.clear()
                while not self._halt.is_set():
                    try:
                        self.ready.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # handed to the engine's thread, which stops the service with it
            self.error = exc
            self._idle.set()

    def _replace_consumer(self, why: str, **detail: object) -> None:
        """A consumer that is out of the group for good ends, not the service: a new one joins the group and
        resumes from the offsets in the database. After a broker restart librdkafka may be fenced as a static
        member (a fatal error) or, when its session times out while the coordinator loads, never rejoin at all
        (no error, no partitions: hence the watchdog on time without an assignment)."""
        self.engine.log.warning(f"{why}; joining the group again", **detail)
        with contextlib.suppress(Exception):
            self.consumer.close()
        self.consumer = self.engine.join()
        with self._commits_lock:
            self._commits.clear()

    def next(self, timeout: float) -> _Batch | None:
        if self.error is not None:
            raise EngineError(f"consuming failed: {self.error}") from self.error
        try:
            return self.ready.get(timeout=timeout)
        except queue.Empty:
            return None

    def idle(self) -> bool:
        """Nothing prepared and the last consume found nothing."""
        return self._idle.is_set() and self.ready.empty()

    def stop(self) -> None:
        self._halt.set()
        self.join()


class Handler(Protocol):
    """What a service plugs into the engine: its subscription, its effects, its periodic work."""

    service: str
    principal: str  # the Kafka principal the service connects as

    def subscription(self) -> list[str]:
        """Topic names, or one `^regex` (new matching topics are picked up by themselves)."""
        ...

    def family(self, topic: str) -> str:
        """ "court" or "feedback": which event types are valid on `topic`."""
        ...

    def check(self, delivered: Delivered) -> str | None:
        """A service's own validity rule beyond the contract; a reason sends the record to dead letters."""
        ...

    def apply(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]: ...

    def repeated(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        """Records whose event id was processed before: no effect again, but the ledger keeps one whose content
        differs as evidence."""
        ...

    def tick(self, conn: Connection, now: dt.datetime, final: bool = False) -> list[OutboxMessage]:
        """Periodic work (every few seconds, and once more with `final` when the engine stops)."""
        ...

    # Optional: `kept_as_evidence`, how many records the last `repeated` stored anyway. A handler that has it
    # records events rather than answering them (the ledger): its run is summarised as events recorded.


class EngineError(RuntimeError):
    pass


def _settle_heap() -> None:
    """A batch is thousands of objects that live until its commit, so with the default thresholds the cyclic
    collector ran many young passes per batch and promoted them, and its full passes walked start-up's whole
    heap (modules, schemas, the ORM) again and again: about a quarter of the bank's bootstrap CPU (py-spy).
    Start-up's objects are frozen out of its sight and young passes are rarer; reference counting frees the
    batches anyway, which hold no cycles of their own."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


_YOUNG_COLLECTION_THRESHOLD = 50_000  # allocations between young passes (Python's default: 700)


def _by_topic(partitions: list[TopicPartition], with_offsets: bool) -> dict[str, str]:
    """Compact for logs: {topic: "0@12 1@-2 ..."} (-2: from the beginning)."""
    out: dict[str, list[str]] = {}
    for p in partitions:
        out.setdefault(p.topic, []).append(f"{p.partition}@{p.offset}" if with_offsets else str(p.partition))
    return {topic: " ".join(items) for topic, items in out.items()}


def _text(value: str | bytes) -> str:
    """Header text for the outbox (JSON in PostgreSQL), from whatever bytes a poison record carried.

    Bytes that are not UTF-8 become U+FFFD, and so does NUL, which PostgreSQL's JSON cannot hold: one such
    byte would otherwise fail every retry of the batch and stop the service for good.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value.replace("\x00", "\ufffd")


class ConsumerEngine:
    def __init__(
        self,
        settings: Settings,
        handler: Handler,
        db: Engine,
        codec: Codec,
        *,
        once: bool = False,
        metrics_port: int | None = None,
        tick_interval: float = 1.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self.settings = settings
        self.handler = handler
        self.db = db
        self.codec = codec
        self.once = once
        self.metrics_port = metrics_port
        self.tick_interval = tick_interval
        self.clock = clock
        self.service = handler.service
        self.clock_tolerance = dt.timedelta(seconds=settings.clock_tolerance_seconds)
        self.dead_letter_topic = settings.topic(DEAD_LETTER)
        self.log = get_logger("hub.engine").bind(service=self.service)
        self.stopping = False
        self.relay = OutboxRelay(
            db,
            idempotent_producer(settings, handler.principal),
            self.service,
            renew=lambda: idempotent_producer(settings, handler.principal),
        )
        self._last_tick = 0.0
        self._last_pending = 0.0
        self.fetcher: _Fetcher | None = None
        self._offset_rows: set[tuple[str, int]] = set()
        self._unassigned_since: float | None = None
        if metrics_port is not None:
            metrics.check_port(metrics_port)
        self.summary = RunSummary(
            self.service,
            records_events=hasattr(handler, "kept_as_evidence"),
            reads_only=getattr(handler, "reads_only", False),
        )
        # The next offset to process per partition (from the database at assignment, then each commit): the lag.
        self._next: dict[tuple[str, int], int] = {}
        self.lag_due = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def stop(self, *_args) -> None:
        if not self.stopping:
            self.log.info("stop requested; finishing the current batch")
        self.stopping = True

    def run(self) -> int:
        """Consume until stopped (or, with `once`, up to the end offsets present at start); exit code.

        First the broker must answer: a started service waits for it as long as it takes, `once` gives up after
        HUB_CONNECT_TIMEOUT_SECONDS (hub.errors.Unavailable). At the end `summary` holds what the run did, and it
        is logged."""
        started = time.monotonic()
        subscription = self.handler.subscription()
        # Every series at 0 before the first scrape can come; a regex subscription's topics once the broker names them.
        metrics.initialise(self.service, [s for s in subscription if not s.startswith("^")], self._writes())
        self._with_db_retry(self.relay.pending)
        self._last_pending = time.monotonic()
        if self.metrics_port is not None:
            metrics.serve(self.metrics_port, self.settings.metrics_address)
        cluster = wait_for_kafka(self.settings, self.handler.principal, forever=not self.once)
        patterns = [re.compile(s) for s in subscription if s.startswith("^")]
        metrics.initialise(self.service, [t for t in cluster.topics if any(p.match(t) for p in patterns)])
        # Only now: while it waits for a server the service has nothing to finish, and SIGTERM ends it at once.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        consumer = self.join()
        targets = self._end_offsets(consumer, subscription) if self.once else None
        _settle_heap()
        fetcher = self.fetcher = _Fetcher(self, consumer)
        self.relay.start()
        fetcher.start()
        self.log.info("consuming", topics=subscription, once=self.once, batch_size=self.settings.batch_size)
        try:
            while not self.stopping:
                batch = fetcher.next(timeout=0.5)
                if batch is not None:
                    self._with_db_retry(lambda b=batch: self._process(b))
                self._periodic()
                if targets is not None and batch is None and fetcher.idle() and self._reached(targets):
                    break
            self._with_db_retry(lambda: self._tick(final=True))
        finally:
            fetcher.stop()
            self.relay.stop()
            fetcher.consumer.close()
        delivered = self.relay.drain(timeout=150.0)
        self._summarise(started)
        if not delivered:
            self.log.error("outbox not fully delivered; the rows stay pending for the next run")
            return 1
        self.log.info("stopped cleanly")
        return 0

    def _summarise(self, started: float) -> None:
        summary = self.summary
        summary.published = sum(n for topic, n in self.relay.sent.items() if topic != self.dead_letter_topic)
        summary.seconds = time.monotonic() - started
        self.log.info(summary.line(), **summary.fields())

    def _writes(self) -> list[str]:
        """The topics the service writes: the dead letters, and what infra/kafka/acls.toml lets its principal write."""
        try:
            declared = {
                g.name
                for g in acl.grants(self.settings)
                if g.principal == self.handler.principal
                and g.resource == "topic"
                and g.operation == "WRITE"
                and g.pattern == "LITERAL"
            }
        except ConfigError:
            declared = set()
        return sorted({*declared, self.dead_letter_topic})

    # -- assignment: our database, not Kafka, knows where we are -------------------------------------

    def join(self) -> Consumer:
        """A consumer in the service's group, subscribed; partitions it is given start where the database says."""
        consumer = make_consumer(
            self.settings,
            f"{self.settings.namespace}hub-{self.service}",
            self.handler.principal,
            # The broker gathers records for up to 100 ms (the batch window anyway) instead of answering each
            # few: a fraction of the fetches, and of the broker's and the service's CPU, under steady load.
            **{"fetch.wait.max.ms": 100, "fetch.min.bytes": 65536},
        )
        consumer.subscribe(self.handler.subscription(), on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._unassigned_since = time.monotonic()
        return consumer

    def unassigned_for(self) -> float:
        """Seconds since the consumer last held an assignment (an empty one counts: the group answered)."""
        return 0.0 if self._unassigned_since is None else time.monotonic() - self._unassigned_since

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._with_db_retry(lambda: self._stored_offsets({(p.topic, p.partition) for p in partitions}))
        for p in partitions:
            p.offset = stored.get((p.topic, p.partition), OFFSET_BEGINNING)
            self._next[(p.topic, p.partition)] = p.offset
        consumer.assign(partitions)
        self._unassigned_since = None
        self.lag_due = True
        self.log.info("partitions assigned", partitions=_by_topic(partitions, with_offsets=True))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.unassign()
        self._unassigned_since = time.monotonic()
        for p in partitions:
            self._next.pop((p.topic, p.partition), None)
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self.service, p.topic, str(p.partition))
        self.log.info("partitions revoked", partitions=_by_topic(partitions, with_offsets=False))

    def _stored_offsets(self, keys: set[tuple[str, int]] | None = None) -> dict[tuple[str, int], int]:
        with self.db.connect() as conn:
            rows = conn.execute(text("select topic, partition, next_offset from consumer_offsets")).all()
        stored = {(r.topic, r.partition): r.next_offset for r in rows}
        return stored if keys is None else {k: v for k, v in stored.items() if k in keys}

    # -- one batch, one transaction ----------------------------------------------------------------

    def prepare(self, messages: list[Message]) -> _Batch | None:
        """The CPU half of a batch (decoding, validating), done while the previous batch is written."""
        batch = _Batch()
        for m in messages:
            error = m.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    self.log.warning("consumer error", error=error.str())
                continue
            batch.records.append(m)
            try:
                event = self.codec.decode_event(m.value(), family=self.handler.family(m.topic()))
            except (CodecError, EventValidationError) as exc:
                batch.dead.append((m, "decode" if isinstance(exc, CodecError) else "validation", str(exc)))
                continue
            item = Delivered(
                event, m.topic(), m.partition(), m.offset(), m.timestamp()[1], m.key(), is_historical(m.headers())
            )
            refused = future_dated(item.event, item.timestamp_ms, self.clock_tolerance) or self.handler.check(item)
            if refused:
                batch.dead.append((m, "validation", refused))
                continue
            batch.delivered.append(item)
        return batch if batch.records else None

    def _process(self, batch: _Batch) -> None:
        """The database half: one transaction for effects, processed ids, outbox and offsets."""
        now = self.clock()
        records = batch.records
        began = time.monotonic()
        with self.db.begin() as conn:
            stored = self._claim(conn, records)
            delivered = [d for d in batch.delivered if d.offset >= stored[(d.topic, d.partition)]]
            dead = [x for x in batch.dead if x[0].offset() >= stored[(x[0].topic(), x[0].partition())]]
            new, again = self._first_time(conn, delivered)
            out = self.handler.apply(conn, new, now) if new else []
            evidence = 0
            if again:
                out.extend(self.handler.repeated(conn, again, now))
                evidence = getattr(self.handler, "kept_as_evidence", 0)
            answers = len(out)  # the handler's messages; the dead letters follow
            out.extend(self._dead_letter(m, kind, reason) for m, kind, reason in dead)
            outbox.add(conn, out)
            reached = self._advance(conn, records)
        # Only once committed: a lost transaction takes its inserted rows, and what it did, along.
        metrics.BATCH_DURATION.labels(self.service).observe(time.monotonic() - began)
        self._offset_rows.update(stored)
        for key, offset in reached.items():
            self._next[key] = max(self._next.get(key, offset), offset)
        self._observe_ages(delivered, dead)
        summary = self.summary
        summary.read += len(delivered) + len(dead)
        summary.dead_lettered += len(dead)
        summary.duplicates += len(again) - evidence
        summary.recorded += len(new) + evidence
        summary.count_feedback(out[:answers])
        for m, kind, reason in dead:
            self.log.warning(
                "record sent to the dead-letter topic",
                topic=m.topic(),
                partition=m.partition(),
                offset=m.offset(),
                error_kind=kind,
                reason=reason,
            )
            metrics.DEAD_LETTERED.labels(self.service, m.topic()).inc()
        for topic in {m.topic() for m in records}:
            metrics.RECORDS_CONSUMED.labels(self.service, topic).inc(sum(1 for m in records if m.topic() == topic))
        metrics.EFFECTS_APPLIED.labels(self.service).inc(len(new) + evidence)
        metrics.DUPLICATES_SKIPPED.labels(self.service).inc(len(again) - evidence)
        if out:
            self.relay.wake()
        first, last = records[0], records[-1]
        self.log.debug(
            "batch committed",
            records=len(records),
            applied=len(new),
            dead_lettered=len(dead),
            first=f"{first.topic()}[{first.partition()}]@{first.offset()}",
            last=f"{last.topic()}[{last.partition()}]@{last.offset()}",
        )
        self._commit_to_kafka(records)

    def _observe_ages(self, delivered: list[Delivered], dead: list[tuple[Message, str, str]]) -> None:
        """Seconds from each record's broker timestamp to now, its batch committed."""
        now_ms = time.time() * 1000
        children: dict[str, object] = {}
        stamped = [(d.topic, d.timestamp_ms) for d in delivered] + [(m.topic(), m.timestamp()[1]) for m, _k, _r in dead]
        for topic, stamp in stamped:
            if stamp <= 0:
                continue  # no timestamp
            child = children.get(topic)
            if child is None:
                child = children[topic] = metrics.RECORD_AGE.labels(self.service, topic)
            child.observe(max(now_ms - stamp, 0.0) / 1000)  # type: ignore[attr-defined]

    def _claim(self, conn: Connection, records: list[Message]) -> dict[tuple[str, int], int]:
        """Lock this batch's partitions' stored offsets: records before them were already applied.

        A partition's row is inserted the first time; rows never go away, so once a transaction that holds
        them has committed the engine stops inserting them.
        """
        first: dict[tuple[str, int], int] = {}
        for m in records:
            first.setdefault((m.topic(), m.partition()), m.offset())
        new = {k: v for k, v in first.items() if k not in self._offset_rows}
        if new:
            conn.execute(
                text(
                    "insert into consumer_offsets (topic, partition, next_offset) "
                    "select * from unnest(cast(:topics as text[]), cast(:parts as int[]), cast(:offs as bigint[])) "
                    "on conflict do nothing"
                ),
                {"topics": [k[0] for k in new], "parts": [k[1] for k in new], "offs": list(new.values())},
            )
        rows = conn.execute(
            text(
                "select topic, partition, next_offset from consumer_offsets "
                "where (topic, partition) in (select * from unnest(cast(:topics as text[]), cast(:parts as int[]))) "
                "order by topic, partition for update"
            ),
            {"topics": [k[0] for k in first], "parts": [k[1] for k in first]},
        ).all()
        stored = {(r.topic, r.partition): r.next_offset for r in rows}
        skipped = sum(1 for m in records if m.offset() < stored[(m.topic(), m.partition())])
        if skipped:
            self.log.info("records already applied by this service skipped", skipped=skipped)
        return stored

    def _dead_letter(self, m: Message, kind: str, reason: str) -> OutboxMessage:
        original = [(_text(k), _text(v or b"")) for k, v in (m.headers() or [])]
        headers = [
            *original,
            ("dlq-reason", _text(reason[:2000])),
            ("dlq-error-kind", kind),
            ("dlq-source-topic", m.topic()),
            ("dlq-source-partition", str(m.partition())),
            ("dlq-source-offset", str(m.offset())),
            ("dlq-service", self.service),
        ]
        return OutboxMessage(self.dead_letter_topic, m.key(), m.value() or b"", headers, None)

    def _first_time(self, conn: Connection, delivered: list[Delivered]) -> tuple[list[Delivered], list[Delivered]]:
        """Record the event ids: those never processed before (once per batch), and the repeats."""
        if not delivered:
            return [], []
        scratch_table(conn, "incoming_events", 'event_id uuid, topic text, partition int, "offset" bigint, n int')
        copy_rows(
            conn,
            "incoming_events",
            ("event_id", "topic", "partition", '"offset"', "n"),
            ((d.event.event_id, d.topic, d.partition, d.offset, n) for n, d in enumerate(delivered)),
        )
        inserted = conn.execute(
            text(
                'insert into processed_events (event_id, topic, partition, "offset") '
                'select event_id, topic, partition, "offset" from incoming_events order by n '
                "on conflict do nothing returning event_id"
            )
        ).scalars()
        new_ids = {str(i) for i in inserted}
        fresh, again = [], []
        for d in delivered:
            if d.event.event_id in new_ids:
                new_ids.discard(d.event.event_id)
                fresh.append(d)
            else:
                again.append(d)
                self.log.info(
                    "event already processed; skipped",
                    event_id=d.event.event_id,
                    topic=d.topic,
                    partition=d.partition,
                    offset=d.offset,
                )
        return fresh, again

    def _advance(self, conn: Connection, records: list[Message]) -> dict[tuple[str, int], int]:
        """Store the next offset of each partition of the batch; returns them."""
        last: dict[tuple[str, int], int] = {}
        for m in records:
            key = (m.topic(), m.partition())
            last[key] = max(last.get(key, -1), m.offset())
        conn.execute(
            text(
                "update consumer_offsets o set next_offset = v.next, updated_at = now() "
                "from unnest(cast(:topics as text[]), cast(:parts as int[]), cast(:nexts as bigint[])) "
                "as v(topic, partition, next) "
                "where o.topic = v.topic and o.partition = v.partition and o.next_offset < v.next"
            ),
            {"topics": [k[0] for k in last], "parts": [k[1] for k in last], "nexts": [o + 1 for o in last.values()]},
        )
        return {k: o + 1 for k, o in last.items()}

    def _commit_to_kafka(self, records: list[Message]) -> None:
        """Informational only (lag tools read it); the database holds the offsets that count."""
        assert self.fetcher is not None
        self.fetcher.commit_later({(m.topic(), m.partition()): m.offset() + 1 for m in records})

    # -- periodic work -------------------------------------------------------------------------------

    def _periodic(self) -> None:
        now = time.monotonic()
        if now - self._last_tick >= self.tick_interval:
            self._last_tick = now
            self._with_db_retry(self._tick)
        if now - self._last_pending >= 5.0:
            self._last_pending = now
            self._with_db_retry(self.relay.pending)  # hub_outbox_pending, from the outbox table

    def _tick(self, final: bool = False) -> None:
        with self.db.begin() as conn:
            out = self.handler.tick(conn, self.clock(), final)
            outbox.add(conn, out)
        self.summary.count_feedback(out)  # retentions that ended by themselves
        if out:
            self.relay.wake()

    def report_lag(self, consumer: Consumer) -> None:
        """Per assigned partition, the high watermark minus the next offset to process. The watermarks come from
        what the fetches already brought back; only a partition not fetched yet costs a round trip."""
        try:
            nexts = dict(self._next)
            for tp in consumer.assignment():
                low, high = consumer.get_watermark_offsets(tp, cached=True)
                if high < 0:
                    low, high = consumer.get_watermark_offsets(tp, timeout=2.0, cached=False)
                following = nexts.get((tp.topic, tp.partition), OFFSET_BEGINNING)
                if following < 0:  # from the beginning: whatever the partition still holds
                    following = low
                metrics.CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(max(high - following, 0))
        except Exception as exc:
            self.log.debug("lag not measured", error=str(exc))

    # -- --once: where the end is ------------------------------------------------------------------

    def _end_offsets(self, consumer: Consumer, subscription: list[str]) -> dict[tuple[str, int], int]:
        topics = consumer.list_topics(timeout=15).topics
        patterns = [re.compile(s) for s in subscription if s.startswith("^")]
        names = [s for s in subscription if not s.startswith("^")]
        names += [t for t in topics if any(p.match(t) for p in patterns)]
        targets = {}
        for name in names:
            if name not in topics:
                raise EngineError(f"topic {name} does not exist; run `hub topics create`")
            for partition in topics[name].partitions:
                targets[(name, partition)] = consumer.get_watermark_offsets(
                    TopicPartition(name, partition), timeout=15
                )[1]
        return targets

    def _reached(self, targets: dict[tuple[str, int], int]) -> bool:
        stored = self._with_db_retry(self._stored_offsets)
        return all(high == 0 or stored.get(key, 0) >= high for key, high in targets.items())

    # -- the database may restart under us ---------------------------------------------------------

    def _with_db_retry(self, action):
        backoff = 0.5
        while True:
            try:
                return action()
            except DBAPIError as exc:
                if not (exc.connection_invalidated or isinstance(exc.orig, OSError) or _is_connection_error(exc)):
                    raise
                if self.stopping and backoff > 8:
                    raise EngineError(
                        "database unavailable while stopping; uncommitted records will be redone"
                    ) from exc
                self.log.warning(
                    "database unavailable; retrying",
                    error=str(exc.orig).strip(),
                    retry_in=backoff,
                    thread=threading.current_thread().name,  # the fetch thread's assignment backs off on its own
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)


def _is_connection_error(exc: DBAPIError) -> bool:
    import psycopg

    return isinstance(exc.orig, psycopg.OperationalError)
