"""The ledger service on the shared consumer engine: court events and every agency's feedback, stored
once each in a hash chain, with the chain's head published as checkpoints."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, Engine, text

from hub.acl import LEDGER
from hub.codec import CONTENT_TYPE, Codec, default_codec
from hub.config import Settings
from hub.db import AUDITOR, copy_rows, engine_for, open_owned
from hub.domain.events import event_to_record, parse_event
from hub.domain.history import Recorded, canonical_json
from hub.engine import Delivered, OutboxMessage
from hub.ledger.chain import GENESIS, LedgerRow, link
from hub.ledger.projection import ReportProjection
from hub.log import get_logger
from hub.topics import CHECKPOINTS, COURT_EVENTS, FEEDBACK_PATTERN, feedback_topic

CHECKPOINT_NAMESPACE = uuid.UUID("0d7e1c52-8a43-4f0e-b7a9-3c6e2f1d9b80")
_COLUMNS = (
    'seq, event_id, topic, partition, "offset", recorded_at, family, event_type, entry_id, agency, '
    "court_event_id, occurred_at, body, historical"
)


def open_database(settings: Settings, *, forever: bool = False) -> Engine:
    """The ledger's database as its owner, migrated if need be; `forever`: a started service, which waits for the
    server as long as it takes (else HUB_CONNECT_TIMEOUT_SECONDS, then hub.errors.Unavailable)."""
    return open_owned(settings, "ledger", "engine", "ledger", forever=forever)


def read_database(settings: Settings) -> Engine:
    """The ledger's database as the auditor: reading only, never migrating."""
    return engine_for(settings, "ledger", role=AUDITOR)


def feedback_subscription(settings: Settings) -> str:
    """Every agency's feedback topic, present and future: a new agency needs no code change here."""
    prefix = re.escape(settings.topic(""))
    return "^" + prefix + FEEDBACK_PATTERN.removeprefix("^")


class LedgerHandler:
    def __init__(self, settings: Settings, codec: Codec | None = None):
        self.service = "ledger"
        self.principal = LEDGER
        self.name = settings.ledger_name
        self.codec = codec or default_codec()
        self.court_topic = settings.topic(COURT_EVENTS)
        self.checkpoint_topic = settings.topic(CHECKPOINTS)
        self.subscription_pattern = feedback_subscription(settings)
        self.every_rows = settings.checkpoint_rows
        self.every = dt.timedelta(seconds=settings.checkpoint_seconds)
        self.settings = settings
        self.log = get_logger("hub.ledger")
        # How many records the last `repeated` stored anyway, as evidence: the engine counts them as recorded
        # (its run summary and metrics), not as duplicates skipped.
        self.kept_as_evidence = 0
        self.projection = ReportProjection(settings)

    def subscription(self) -> list[str]:
        return [self.court_topic, self.subscription_pattern]

    def family(self, topic: str) -> str:
        return "court" if topic == self.court_topic else "feedback"

    def check(self, d: Delivered) -> str | None:
        """An agency speaks only for itself: its feedback must come on its own topic."""
        if d.event.family == "feedback":
            expected = self.settings.topic(feedback_topic(d.event.agency))  # type: ignore[attr-defined]
            if d.topic != expected:
                return f"feedback from agency {d.event.agency!r} on {d.topic}, not on {expected}"  # type: ignore[attr-defined]
        return None

    def _head(self, conn: Connection, now: dt.datetime) -> tuple[int, str, int, dt.datetime]:
        conn.execute(
            text(
                "insert into chain_head (ledger, seq, hash, checkpoint_seq, checkpoint_at) "
                "values (:ledger, 0, :genesis, 0, :now) on conflict do nothing"
            ),
            {"ledger": self.name, "genesis": GENESIS, "now": now},
        )
        row = conn.execute(
            text("select seq, hash, checkpoint_seq, checkpoint_at from chain_head where ledger = :ledger for update"),
            {"ledger": self.name},
        ).one()
        return row.seq, row.hash, row.checkpoint_seq, row.checkpoint_at

    def apply(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        seq, head, checkpoint_seq, checkpoint_at = self._head(conn, now)
        rows = []
        for d in batch:
            event = d.event
            seq += 1
            row = LedgerRow(
                seq=seq,
                event_id=event.event_id,
                topic=d.topic,
                partition=d.partition,
                offset=d.offset,
                recorded_at=d.timestamp,
                family=event.family,
                event_type=event.event_type,
                entry_id=event.entry_id,  # type: ignore[attr-defined]
                agency=getattr(event, "agency", None),
                court_event_id=getattr(event, "court_event_id", None),
                occurred_at=event.occurred_at,
                body=canonical_json(event_to_record(event)),
                historical=d.historical,
            )
            new_head = link(head, row)
            rows.append((*row.__dict__.values(), head, new_head))  # the fields, in column order
            head = new_head
        copy_rows(conn, "ledger_events", [*_COLUMNS.split(", "), "prev_hash", "hash"], rows)
        out = []
        if seq - checkpoint_seq >= self.every_rows:
            out.append(self._checkpoint(seq, head, now))
            checkpoint_seq, checkpoint_at = seq, now
        conn.execute(
            text(
                "update chain_head set seq = :seq, hash = :hash, checkpoint_seq = :cseq, checkpoint_at = :cat "
                "where ledger = :ledger"
            ),
            {"seq": seq, "hash": head, "cseq": checkpoint_seq, "cat": checkpoint_at, "ledger": self.name},
        )
        return out

    def repeated(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        """An event id seen before: an identical copy is a harmless republication and is not stored again; one
        with other content is kept in the chain as evidence (the rules report it as EVENT_ID_CONFLICT)."""
        ids = list({d.event.event_id for d in batch})
        stored: dict[str, set[str]] = {}
        for event_id, body in conn.execute(
            text("select event_id::text, body from ledger_events where event_id = any(cast(:ids as uuid[]))"),
            {"ids": ids},
        ):
            stored.setdefault(event_id, set()).add(body)
        conflicting = []
        for d in batch:
            body = canonical_json(event_to_record(d.event))
            if body not in stored.setdefault(d.event.event_id, set()):
                stored[d.event.event_id].add(body)
                conflicting.append(d)
                self.log.warning(
                    "event id reused with different content; kept as evidence",
                    event_id=d.event.event_id,
                    topic=d.topic,
                    partition=d.partition,
                    offset=d.offset,
                )
        self.kept_as_evidence = len(conflicting)
        return self.apply(conn, conflicting, now) if conflicting else []

    def tick(self, conn: Connection, now: dt.datetime, final: bool = False) -> list[OutboxMessage]:
        """Anchor rows that arrived since the last checkpoint, after T seconds (or when stopping). When stopping,
        the report's projection is brought up to the last row too; while running, `hub ledger project` keeps it
        (hub/ledger/projection.py), in a process of its own at a lower priority."""
        if final:
            self.projection.catch_up(conn, now, final=True)
        seq, head, checkpoint_seq, checkpoint_at = self._head(conn, now)
        if seq == checkpoint_seq or not (final or now - checkpoint_at >= self.every):
            return []
        conn.execute(
            text("update chain_head set checkpoint_seq = :seq, checkpoint_at = :now where ledger = :ledger"),
            {"seq": seq, "now": now, "ledger": self.name},
        )
        return [self._checkpoint(seq, head, now)]

    def _checkpoint(self, seq: int, head: str, now: dt.datetime) -> OutboxMessage:
        record = {"ledger": self.name, "row_count": seq, "head_hash": head, "created_at": now.isoformat()}
        checkpoint_id = str(uuid.uuid5(CHECKPOINT_NAMESPACE, f"{self.name}|{seq}|{head}"))
        self.log.info("checkpoint", ledger=self.name, row_count=seq, head_hash=head)
        headers = [("event-type", "Checkpoint"), ("event-id", checkpoint_id), ("content-type", CONTENT_TYPE)]
        return OutboxMessage(
            self.checkpoint_topic, self.name.encode(), self.codec.encode("Checkpoint", record), headers, checkpoint_id
        )


# -- reading the ledger back ------------------------------------------------------------------------


def rows(conn: Connection) -> Iterator[tuple[LedgerRow, str, str]]:
    """Every stored row in chain order, with its stored previous and own hash."""
    query = text(f"select {_COLUMNS}, prev_hash, hash from ledger_events order by seq")
    result = conn.execute(query.execution_options(stream_results=True, yield_per=5000))
    for r in result:
        row = LedgerRow(
            seq=r.seq,
            event_id=str(r.event_id),
            topic=r.topic,
            partition=r.partition,
            offset=r.offset,
            recorded_at=r.recorded_at,
            family=r.family,
            event_type=r.event_type,
            entry_id=r.entry_id,
            agency=r.agency,
            court_event_id=r.court_event_id,
            occurred_at=r.occurred_at,
            body=r.body,
            historical=r.historical,
        )
        yield row, r.prev_hash, r.hash


def last_seq(conn: Connection) -> int:
    """The chain's length: its last row's seq, 0 when empty."""
    return conn.execute(text("select coalesce(max(seq), 0) from ledger_events")).scalar_one()


def records(rows: Iterable) -> tuple[list[Recorded], list[Recorded]]:
    """Stored rows (anything with seq, family, recorded_at, historical and body) as (court, feedback) records."""
    import json

    court: list[Recorded] = []
    feedback: list[Recorded] = []
    for row in rows:
        event = parse_event(json.loads(row.body), row.family)
        (court if row.family == "court" else feedback).append(Recorded(event, row.recorded_at, row.seq, row.historical))
    return court, feedback


def history(conn: Connection) -> tuple[list[Recorded], list[Recorded]]:
    """The stored events as (court, feedback) records for the rules and the reconstruction."""
    return records(row for row, _prev, _hash in rows(conn))
