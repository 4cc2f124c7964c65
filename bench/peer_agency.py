"""The peer of P1: the plain at-least-once agency an engineer would write in a day, for one agency's policy.

One process, one thread: confluent-kafka as the auditor (who may read the court topic, in a `hub-audit-`
group), fastavro's decode without model validation, and the hub's pure `decide` with the agency's policy, so
the decisions and feedback event ids are the hub's. Per batch one psycopg transaction: load the batch's
entries, decide, COPY + `INSERT ... ON CONFLICT` the changed entries, delete + COPY their restrictions. The
feedback (the hub's key, value and headers) is produced and flushed before that transaction commits, and the
Kafka offsets are committed after it: a crash before the commit re-sends feedback with the same event ids
(readers deduplicate), one after it finds the acts stored and `decide` sends nothing twice. Flushing after the
commit instead would lose the feedback of a crash in between. No outbox and no processed ids (`decide`
ignores an act its entry already holds); one instance at a time (partitions assigned, not balanced); a
retention's end (the hub's tick) is left out, as the bench sets no retention rules.

It runs as `python -m bench.worker plain-agency`; the harness compares its feedback topic and restrictions
with the hub's (`feedback_set`, `restriction_set`).
"""

from __future__ import annotations

import datetime as dt
import json
import resource
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import NewTopic
from psycopg import sql
from sqlalchemy.engine import make_url

from hub.config import Settings
from hub.domain.events import CourtEvent
from hub.domain.lifecycle import BINDING, Act
from hub.domain.sanctions import EntrySanction, Status

_ENTRY_COLUMNS = (
    "entry_id, debtor_id, subject_id, measures, status, included_event_id, closing_event_id, retained, "
    "retain_until, acts"
)
_TABLES = (
    "create table if not exists entries (entry_id text primary key, debtor_id text not null, subject_id text not "
    "null, measures text[] not null, status text not null, included_event_id text, closing_event_id text, "
    "retained text[] not null, retain_until timestamptz, acts jsonb not null)",
    "create table if not exists restrictions (subject_id text, measure text, entry_id text, until timestamptz, "
    "primary key (subject_id, measure, entry_id))",
    "create index if not exists restrictions_by_entry on restrictions (entry_id)",
    "create temp table changed (like entries) on commit delete rows",
)
_UPSERT = (
    f"insert into entries ({_ENTRY_COLUMNS}) select {_ENTRY_COLUMNS} from changed on conflict (entry_id) do update "
    "set debtor_id = excluded.debtor_id, subject_id = excluded.subject_id, measures = excluded.measures, "
    "status = excluded.status, included_event_id = excluded.included_event_id, "
    "closing_event_id = excluded.closing_event_id, retained = excluded.retained, "
    "retain_until = excluded.retain_until, acts = excluded.acts"
)


def feedback_topic(settings: Settings, agency: str) -> str:
    """Beside the hub's topics, matching no service's subscription."""
    return settings.topic(f"bench.peer-{agency}.feedback")


def database(settings: Settings, agency: str) -> str:
    return f"{settings.namespace}peer_{agency}"


def database_url(settings: Settings, name: str = "postgres") -> str:
    """libpq URL of a database as the local stack's superuser: the peer has no roles of its own to set up."""
    url = make_url(settings.admin_database_url()).set(drivername="postgresql", database=name)
    return url.render_as_string(hide_password=False)


def _setup(settings: Settings, agency: str) -> psycopg.Connection:
    from hub.clients import admin
    from hub.topics import EVENT_TOPIC_CONFIG, _wait_for_leaders

    name = database(settings, agency)
    with psycopg.connect(database_url(settings), autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    conn = psycopg.connect(database_url(settings, name))
    for statement in _TABLES:
        conn.execute(statement)
    conn.commit()
    topic = feedback_topic(settings, agency)
    config = {**EVENT_TOPIC_CONFIG, "min.insync.replicas": str(settings.effective_min_insync_replicas)}
    client = admin(settings, "admin")  # kept alive until the future resolves
    future = client.create_topics(
        [NewTopic(topic, settings.partitions, settings.replication_factor, config=config)], operation_timeout=30
    )[topic]
    try:
        future.result()
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
    _wait_for_leaders(client, [topic])
    return conn


@dataclass(slots=True)
class _Person:
    id_number: str


@dataclass(slots=True)
class _Debtor:
    kind: str
    id_number: str
    legal_representative: _Person | None


@dataclass(slots=True)
class _CourtAct:
    """The fields of a court event that `decide` reads, and no model: pydantic's `model_construct` alone cost
    more than fastavro's decode of the record."""

    event_type: str
    event_id: str
    occurred_at: dt.datetime
    entry_id: str
    debtor: _Debtor


def _event(record: dict[str, Any]) -> CourtEvent:
    """Unvalidated: the records passed the hub's validation before they were published."""
    d = record["debtor"]
    rep = d["legal_representative"]
    debtor = _Debtor(d["kind"], d["id_number"], None if rep is None else _Person(rep["id_number"]))
    act = _CourtAct(
        record["type"], record["event_id"], dt.datetime.fromisoformat(record["occurred_at"]), record["entry_id"], debtor
    )
    return cast(CourtEvent, act)  # what decide() reads of a CourtEvent, duck-typed


def _load(conn: psycopg.Connection, ids: Iterable[str]) -> dict[str, EntrySanction]:
    rows = conn.execute(f"select {_ENTRY_COLUMNS} from entries where entry_id = any(%s)", (list(ids),))
    return {
        r[0]: EntrySanction(
            r[0],
            r[1],
            r[2],
            tuple(r[3]),
            Status(r[4]),
            r[5],
            r[6],
            tuple(r[7]),
            r[8],
            tuple(Act(kind, dt.datetime.fromisoformat(at), position, item) for kind, item, at, position in r[9]),
        )
        for r in rows
    }


def _save(conn: psycopg.Connection, changed: list[EntrySanction], existed: set[str]) -> None:
    """Only entries that were stored before the batch can have restrictions to delete."""
    with conn.cursor() as cur:
        with cur.copy(f"copy changed ({_ENTRY_COLUMNS}) from stdin") as copy:
            for e in changed:
                acts = json.dumps([[a.kind, a.item, a.occurred_at.isoformat(), a.position] for a in e.acts])
                copy.write_row(
                    (
                        e.entry_id,
                        e.debtor_id,
                        e.subject_id,
                        list(e.measures),
                        e.status.value,
                        e.included_event_id,
                        e.closing_event_id,
                        list(e.retained),
                        e.retain_until,
                        acts,
                    )
                )
        cur.execute(_UPSERT)
        old = [e.entry_id for e in changed if e.entry_id in existed]
        if old:
            cur.execute("delete from restrictions where entry_id = any(%s)", (old,))
        with cur.copy("copy restrictions (subject_id, measure, entry_id, until) from stdin") as copy:
            for e in changed:
                for subject, measure, until in e.restrictions():
                    copy.write_row((subject, measure, e.entry_id, until))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(agency: str) -> dict[str, Any]:
    """Apply the court topic from the committed offsets (else the beginning) up to its end offsets at start;
    returns the figures, with the seconds spent in each part of a batch."""
    from consumers import load_policy
    from hub.clients import consumer as make_consumer
    from hub.clients import idempotent_producer, produce
    from hub.codec import CONTENT_TYPE, default_codec
    from hub.config import get_settings
    from hub.domain.sanctions import decide
    from hub.readback import watermarks
    from hub.topics import COURT_EVENTS

    started = time.perf_counter()
    settings = get_settings()
    policy = load_policy(agency, settings)
    codec = default_codec()
    source, target = settings.topic(COURT_EVENTS), feedback_topic(settings, agency)
    conn = _setup(settings, agency)
    producer = idempotent_producer(settings, "admin")
    consumer = make_consumer(settings, f"{settings.namespace}hub-audit-peer-{agency}", "auditor")
    partitions = sorted(consumer.list_topics(source, timeout=15).topics[source].partitions)
    ends = {p: watermarks(consumer, source, p)[1] for p in partitions}
    committed = consumer.committed([TopicPartition(source, p) for p in partitions], timeout=15)
    following = {tp.partition: max(tp.offset, 0) for tp in committed}
    consumer.assign(
        [TopicPartition(source, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING) for tp in committed]
    )
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failed.append(error)

    spent = dict.fromkeys(
        ("consume", "decode", "load", "decide", "write", "produce", "flush", "commit", "offsets"), 0.0
    )
    records = binding = feedback = batches = 0
    setup_s, cpu_at_start = time.perf_counter() - started, _cpu()
    last_progress = mark = time.perf_counter()

    def lap(part: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        spent[part] += now - mark
        mark = now

    try:
        while any(following[p] < ends[p] for p in partitions):
            messages = consumer.consume(num_messages=settings.batch_size, timeout=1.0)
            lap("consume")
            if not messages:
                if time.perf_counter() - last_progress > 60:
                    raise TimeoutError(f"nothing for 60 s before the end offsets {ends}, at {following}")
                continue
            last_progress = time.perf_counter()
            events: list[tuple[CourtEvent, int]] = []
            reached: dict[int, int] = {}
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                reached[m.partition()] = m.offset() + 1
                _name, record = codec.decode(m.value())
                if record["type"] in BINDING:  # decide() changes nothing for the other acts
                    events.append((_event(record), m.offset()))
            records += len(messages)
            binding += len(events)
            lap("decode")
            with conn.transaction():
                entries = _load(conn, {e.entry_id for e, _offset in events})
                existed = set(entries)
                lap("load")
                now = dt.datetime.now(dt.UTC)
                changed: dict[str, EntrySanction] = {}
                answers = []
                for event, offset in events:
                    outcome = decide(policy, entries.get(event.entry_id), event, now, offset)
                    if outcome.entry is not None:
                        entries[outcome.entry.entry_id] = changed[outcome.entry.entry_id] = outcome.entry
                    answers.extend(outcome.feedback)
                lap("decide")
                _save(conn, list(changed.values()), existed)
                lap("write")
                for f in answers:
                    headers = [("event-type", f.event_type), ("event-id", f.event_id), ("content-type", CONTENT_TYPE)]
                    produce(
                        producer,
                        target,
                        key=f.debtor_id.encode(),
                        value=codec.encode_event(f),
                        headers=headers,
                        on_delivery=delivered,
                    )
                lap("produce")
                if producer.flush(60) or failed:
                    raise RuntimeError(f"feedback not delivered: {failed[:3] or 'flush timed out'}")
                lap("flush")
            lap("commit")
            consumer.commit(offsets=[TopicPartition(source, p, o) for p, o in reached.items()], asynchronous=False)
            following.update(reached)
            lap("offsets")
            feedback += len(answers)
            batches += 1
    finally:
        consumer.close()
        conn.close()
    seconds = time.perf_counter() - started
    loop_s = seconds - setup_s
    return {
        "records": records,
        "binding": binding,
        "feedback": feedback,
        "batches": batches,
        "seconds": seconds,
        "setup_s": setup_s,
        "rate": records / seconds if seconds else None,
        "loop_rate": records / loop_s if records and loop_s else None,
        "loop_cpu_s": _cpu() - cpu_at_start,
        "spent_s": {k: round(v, 3) for k, v in spent.items()},
    }


# -- the honesty check: what the harness compares with the hub's ------------------------------------------

Feedback = tuple[str, str, str, str, tuple[str, ...]]  # event_id, type, entry_id, subject_id, measures


def feedback_set(settings: Settings, topic: str) -> tuple[set[Feedback], int]:
    """Every record of a feedback topic from offset 0 (read as the auditor), decoded; and how many records."""
    from hub.codec import _measures_from_wire, default_codec
    from hub.readback import read_range

    codec = default_codec()
    found: set[Feedback] = set()
    count = 0
    for r in read_range(settings, topic):
        count += 1
        record = _measures_from_wire(codec.decode(r.value)[1])
        found.add(
            (record["event_id"], record["type"], record["entry_id"], record["subject_id"], tuple(record["measures"]))
        )
    return found, count


Restriction = tuple[str, str, str, dt.datetime | None]  # subject_id, measure, entry_id, until


def restriction_set(url: str) -> set[Restriction]:
    with psycopg.connect(url) as conn:
        return {tuple(r) for r in conn.execute("select subject_id, measure, entry_id, until from restrictions")}  # type: ignore[misc]


def difference(what: str, hub: set[Any], peer: set[Any]) -> str | None:
    """None when equal; else how many differ on each side, with an example of each."""
    only_hub, only_peer = hub - peer, peer - hub
    if not only_hub and not only_peer:
        return None
    example = [f"hub only: {min(only_hub, key=repr)}" if only_hub else ""]
    example += [f"peer only: {min(only_peer, key=repr)}" if only_peer else ""]
    return (
        f"{what} differ: {len(only_hub):,} of the hub's {len(hub):,} are not the peer's, {len(only_peer):,} of the "
        f"peer's {len(peer):,} are not the hub's; e.g. {'; '.join(e for e in example if e)}"
    )
