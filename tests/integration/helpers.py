"""Helpers for integration tests: publish, run services to the end, read what they wrote."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import text

from consumers import load_policy
from hub.agency import store
from hub.agency.service import AgencyHandler, open_database
from hub.cli.common import DEFAULT_WORKERS
from hub.codec import default_codec
from hub.config import Settings
from hub.domain.events import CourtEvent, FeedbackEvent, parse_event
from hub.domain.sanctions import EntrySanction
from hub.engine import ConsumerEngine
from hub.engine.workers import instance_id
from hub.readback import read_range
from hub.topics import feedback_topic
from producers.publisher import CourtPublisher
from producers.simulator import SimulationConfig, simulate


def simulated(debtors: int, seed: int, breach_rate: float = 0.02) -> list[CourtEvent]:
    return [
        parse_event(r) for r in simulate(SimulationConfig(debtors=debtors, seed=seed, breach_rate=breach_rate)).events
    ]  # type: ignore[misc]


def publish(settings: Settings, events: Iterable[CourtEvent], history: bool = True) -> int:
    """Simulated histories are past events: by default they are loaded as a historical import, so the ledger
    does not judge their publication time (tests of that rule publish with history=False)."""
    report = CourtPublisher(settings, history=history).publish(events)
    assert report.ok, report.failures
    return report.published


def run_agency_once(settings: Settings, agency: str) -> int:
    codec = default_codec()
    handler = AgencyHandler(settings, load_policy(agency, settings), codec)
    return ConsumerEngine(settings, handler, open_database(settings, agency), codec, once=True).run()


def applied_records(settings: Settings, agency: str) -> int:
    """How far an agency has durably got: the sum of its stored next offsets."""
    db = open_database(settings, agency)
    with db.connect() as conn:
        total = conn.execute(text("select coalesce(sum(next_offset), 0) from consumer_offsets")).scalar_one()
    db.dispose()
    return total


def agency_records(settings: Settings, agency: str) -> dict[str, EntrySanction]:
    db = open_database(settings, agency)
    with db.connect() as conn:
        records = store.load_all(conn)
    db.dispose()
    return records


def agency_restrictions(settings: Settings, agency: str) -> dict[tuple[str, str], set[str]]:
    db = open_database(settings, agency)
    with db.connect() as conn:
        found = store.restrictions(conn, dt.datetime.now(dt.UTC))
    db.dispose()
    return found


def feedback_records(settings: Settings, agency: str) -> list[FeedbackEvent]:
    codec = default_codec()
    return [
        codec.decode_event(r.value, family="feedback")  # type: ignore[misc]
        for r in read_range(settings, settings.topic(feedback_topic(agency)))
    ]


def pending_outbox(settings: Settings, agency: str) -> int:
    db = open_database(settings, agency)
    with db.connect() as conn:
        count = conn.execute(text("select count(*) from outbox")).scalar_one()
    db.dispose()
    return count


def comparable(records: dict[str, EntrySanction]) -> dict[str, tuple]:
    """Entry records without the timestamps the database rounds differently."""
    return {
        k: (v.debtor_id, v.subject_id, v.measures, v.status, v.included_event_id, v.closing_event_id, v.retained)
        for k, v in records.items()
    }


def run_ledger_once(settings: Settings) -> int:
    from hub.ledger.service import LedgerHandler
    from hub.ledger.service import open_database as open_ledger

    codec = default_codec()
    return ConsumerEngine(settings, LedgerHandler(settings, codec), open_ledger(settings), codec, once=True).run()


def ledger_query(settings: Settings, sql: str, **params):
    from hub.ledger.service import open_database as open_ledger

    db = open_ledger(settings)
    with db.begin() as conn:
        result = conn.execute(text(sql), params)
        rows = result.all() if result.returns_rows else result.rowcount
    db.dispose()
    return rows


def assert_one_id_per_effect(published: list[FeedbackEvent]) -> None:
    """However often a feedback is re-sent, one effect has one event id."""
    effects: dict[tuple, set[str]] = {}
    for f in published:
        effects.setdefault((f.type, f.court_event_id, tuple(f.measures)), set()).add(f.event_id)  # type: ignore[attr-defined]
    assert all(len(ids) == 1 for ids in effects.values())


# `hub agency run` without --workers runs one worker per CPU (hub.cli.common.DEFAULT_WORKERS): a test that looks at
# one process (its metrics port, its group member) must look at every worker.
WORKERS = DEFAULT_WORKERS


def free_ports(count: int = WORKERS) -> int:
    """A port P with P .. P+count-1 free: `--metrics-port P` for `count` workers."""
    import socket

    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = sock.getsockname()[1]
        if first + count - 1 > 65535:
            continue
        try:
            for port in range(first, first + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first


def group_member(instance: str, worker: int = 0) -> str:
    """The static group member (group.instance.id) that worker `worker` of a service given HUB_INSTANCE_ID is."""
    return instance if WORKERS == 1 else instance_id(instance, worker)


def all_hold_partitions(log: Path, workers: int = WORKERS) -> bool:
    """Whether each of a service's `workers` processes holds partitions now, by the service's log (JSON lines)."""
    import json

    holds: dict[int | None, bool] = {}
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["event"] in ("partitions assigned", "partitions revoked"):
                holds[entry.get("worker")] = entry["event"] == "partitions assigned"
    return len(holds) == workers and all(holds.values())
