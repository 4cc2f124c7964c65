"""An agency service: the engine's handler for one agency, and the interception check (自动拦截)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine

from hub.acl import agency_principal
from hub.agency import store
from hub.codec import CONTENT_TYPE, Codec, default_codec
from hub.config import Settings
from hub.db import open_owned
from hub.domain.events import FeedbackEvent, InterceptionRecorded
from hub.domain.sanctions import AgencyPolicy, decide, expire
from hub.engine import Delivered, OutboxMessage
from hub.log import get_logger
from hub.topics import COURT_EVENTS, feedback_topic


def open_database(settings: Settings, agency: str, *, forever: bool = False) -> Engine:
    """The agency's own database as its owner, migrated if need be; `forever`: a started service, which waits for
    the server as long as it takes (else HUB_CONNECT_TIMEOUT_SECONDS, then hub.errors.Unavailable)."""
    return open_owned(settings, agency, "engine", "agency", forever=forever)


class AgencyHandler:
    """Applies court events to the agency's records and answers each with feedback, through the outbox."""

    def __init__(self, settings: Settings, policy: AgencyPolicy, codec: Codec | None = None):
        self.policy = policy
        self.service = policy.name
        self.principal = agency_principal(policy.name)
        self.codec = codec or default_codec()
        self.source = settings.topic(COURT_EVENTS)
        self.target = settings.topic(feedback_topic(policy.name))
        self.log = get_logger("hub.agency").bind(service=self.service)

    def subscription(self) -> list[str]:
        return [self.source]

    def family(self, topic: str) -> str:
        return "court"

    def check(self, delivered: Delivered) -> str | None:
        return None

    def message(self, event: FeedbackEvent) -> OutboxMessage:
        headers = [("event-type", event.event_type), ("event-id", event.event_id), ("content-type", CONTENT_TYPE)]
        return OutboxMessage(
            self.target, event.debtor_id.encode(), self.codec.encode_event(event), headers, event.event_id
        )

    def apply(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        records = store.load(conn, (d.event.entry_id for d in batch))  # type: ignore[attr-defined]
        changed = {}
        out = []
        for d in batch:
            event = d.event
            outcome = decide(self.policy, records.get(event.entry_id), event, now, d.offset)  # type: ignore[arg-type]
            if outcome.ignored:
                self.log.info(
                    "event changes no sanction",
                    reason=outcome.ignored,
                    event_id=event.event_id,
                    event_type=event.event_type,
                    entry_id=event.entry_id,  # type: ignore[attr-defined]
                    topic=d.topic,
                    partition=d.partition,
                    offset=d.offset,
                )
            if outcome.entry is not None:
                records[outcome.entry.entry_id] = changed[outcome.entry.entry_id] = outcome.entry
            out.extend(self.message(f) for f in outcome.feedback)
        store.save(conn, changed.values())
        return out

    def repeated(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        return []  # an agency acts on the first record of an event id only; the ledger judges a conflict

    def tick(self, conn: Connection, now: dt.datetime, final: bool = False) -> list[OutboxMessage]:
        """Retentions end by themselves at `retain_until`; recorded interceptions become feedback."""
        ended = []
        out = self.forward_interceptions(conn)
        for entry in store.due_retentions(conn, now):
            outcome = expire(self.policy, entry, now)
            if outcome is not None and outcome.entry is not None:
                ended.append(outcome.entry)
                out.extend(self.message(f) for f in outcome.feedback)
                self.log.info("retention ended", entry_id=entry.entry_id, subject_id=entry.subject_id)
        store.save(conn, ended)
        return out

    def forward_interceptions(self, conn: Connection) -> list[OutboxMessage]:
        out = []
        for r in store.take_interceptions(conn):
            entries = r.entry_ids.split(",")
            event = InterceptionRecorded.model_construct(
                event_id=r.event_id,
                occurred_at=r.occurred_at,
                agency=self.policy.name,
                entry_id=entries[0],
                court_event_id=None,
                debtor_id=r.debtor_id or r.subject_id,
                subject_id=r.subject_id,
                measures=[r.measure],
                measure=r.measure,
                channel=r.channel,
                entry_ids=entries,
            )
            out.append(self.message(event))
        return out
