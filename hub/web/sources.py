"""What the web pages read, and from where: the register's public listings (as the `web` role, which can
see nothing else of it), the ledger and the services' stored offsets (as the auditor, read only), the
brokers' end offsets (as the auditor), and the desk's own database. Reading is all this module does.

The desk never holds the whole ledger: an entry's page reads that entry's rows (by their indexes), the
breaches of now come from the report's projection (hub/ledger/projection.py), the delays chart from one
query over the ledger's columns, so a page costs the same over a million events as over a hundred. Only a
judgement the projection cannot make (an instant before its last step, other deadline settings) reads and
judges the whole history, as `hub ledger report` does; it is kept per chain length and instant.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from hub.acl import AUDITOR
from hub.clients import consumer
from hub.config import ConfigError, Settings
from hub.db import REGISTER, WEB, engine_for, services_of
from hub.domain.lifecycle import Recorded
from hub.domain.oversight import Answer, window_start
from hub.domain.rules import Violation, judge
from hub.ledger.report import projected
from hub.ledger.service import history, last_seq, records
from hub.log import get_logger
from hub.topics import COURT_EVENTS, feedback_topic

NOW_REUSE = 10.0  # seconds a judgement of "now" serves the desk's pages while the chain has not grown
CHART_REUSE = 60.0  # seconds the delays chart's answers serve, the chain growing or not
_ROW = "seq, family, recorded_at, historical, body"

# One entry's rows: its own, and the interceptions that name it after another entry (a block's first entry
# is its row's entry_id). Both by an index (hub/migrations/ledger/versions/0005_desk_reads.py).
_ENTRY = text(
    f"select {_ROW} from ledger_events where entry_id = :e "
    f"union all select {_ROW} from ledger_events where event_type = 'InterceptionRecorded' and entry_id <> :e "
    "and (body::jsonb -> 'entry_ids') @> jsonb_build_array(cast(:e as text)) order by seq"
)
_COURTS = text(
    "select distinct on (entry_id) entry_id, body::jsonb ->> 'court_code' as court_code from ledger_events "
    "where family = 'court' and entry_id = any(:ids) order by entry_id, seq"
).bindparams(bindparam("ids", type_=ARRAY(Text)))
_FIRST_FEEDBACK = text("select min(recorded_at) from ledger_events where agency = :a and family = 'feedback'")
# The answers `hub.domain.oversight.answers` finds in the records, from the columns alone: a feedback at its
# first record, not an interception, whose court act is in the ledger (at that act's first record).
_ANSWERS = text(
    "select f.agency, f.recorded_at as answered_at, c.recorded_at as court_at from ledger_events f "
    "join lateral (select c.recorded_at, c.body from ledger_events c where c.family = 'court' "
    "and c.event_id = cast(f.court_event_id as uuid) order by c.seq limit 1) c on true "
    "where f.family = 'feedback' and f.agency = any(:agencies) and f.recorded_at >= :since "
    "and f.event_type <> 'InterceptionRecorded' and f.court_event_id is not null "
    "and not exists (select 1 from ledger_events o where o.event_id = f.event_id and o.family = 'feedback' "
    "and o.seq < f.seq) "
    "and (cast(:court as text) is null or c.body::jsonb ->> 'court_code' = :court)"
).bindparams(bindparam("agencies", type_=ARRAY(Text)))


@dataclass(frozen=True)
class Verified:
    finished_at: dt.datetime
    passed: bool
    differences: int
    summary: str


def as_auditor(settings: Settings) -> Settings:
    """The settings the desk reads with as the auditor: the web server's own HUB_DATABASE_USERNAME (a deployment
    that names one role per process) gives way to the auditor and HUB_WEB_AUDITOR_PASSWORD_FILE."""
    if settings.database_username in (None, AUDITOR):
        return settings
    if settings.web_auditor_password_file is None:
        raise ConfigError(
            f"HUB_DATABASE_USERNAME is {settings.database_username}: the desk also reads the ledger as the auditor, "
            "so set HUB_WEB_AUDITOR_PASSWORD_FILE to the auditor role's password file"
        )
    return settings.model_copy(
        update={"database_username": AUDITOR, "database_password_file": settings.web_auditor_password_file}
    )


class Sources:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.auditor = as_auditor(settings)
        self.register: Engine = engine_for(settings, REGISTER, role=WEB, pool_size=8)
        self.web: Engine = engine_for(settings, WEB)
        self.ledger: Engine = engine_for(self.auditor, "ledger", role=AUDITOR)
        self._judged_lock = threading.Lock()
        self._judged: dict[tuple[int, dt.datetime], list[Violation]] = {}
        self._now: tuple[int, float, dt.datetime, list[Violation]] | None = None
        self._answers: dict[str | None, tuple[float, list[Answer]]] = {}
        self._lag: tuple[float, dict[str, int | None]] | None = None
        self._kafka = None
        self._kafka_lock = threading.Lock()
        self._service_dbs: dict[str, Engine] = {}
        self.log = get_logger("hub.web")

    def close(self) -> None:
        for db in (self.register, self.web, self.ledger, *self._service_dbs.values()):
            db.dispose()
        if self._kafka is not None:
            self._kafka.close()

    # -- the ledger ------------------------------------------------------------------------------

    def ledger_rows(self) -> int:
        with self.ledger.connect() as conn:
            return last_seq(conn)

    def entry(self, entry_id: str) -> tuple[list[Recorded], list[Recorded]]:
        """One entry's court records and the feedback about it, in chain order."""
        with self.ledger.connect() as conn:
            return records(conn.execute(_ENTRY, {"e": entry_id}))

    def courts_of(self, entry_ids: Iterable[str]) -> dict[str, str]:
        """The court of each of these entries the ledger has a court record of."""
        ids = sorted(set(entry_ids))
        if not ids:
            return {}
        with self.ledger.connect() as conn:
            return {r.entry_id: r.court_code for r in conn.execute(_COURTS, {"ids": ids})}

    def agency_starts(self) -> dict[str, dt.datetime | None]:
        """Each agency's start for its deadlines (`Deadlines.agency_start`): HUB_AGENCY_SINCE, else the record
        time of its first feedback."""
        since = self.settings.deadlines().agency_since
        out: dict[str, dt.datetime | None] = {}
        with self.ledger.connect() as conn:
            for agency in self.settings.agencies:
                out[agency] = since.get(agency) or conn.execute(_FIRST_FEEDBACK, {"a": agency}).scalar_one()
        return out

    def breaches(self, as_of: dt.datetime | None = None) -> tuple[dt.datetime, list[Violation]]:
        """The ledger's breaches as of `as_of` (None: now), and that instant: the same as `hub ledger report`'s.
        One of now is reused for NOW_REUSE seconds while the chain has not grown (a deadline passing meanwhile
        shows that much later)."""
        if as_of is not None:
            return as_of, self._judge(as_of)
        seq = self.ledger_rows()
        kept = self._now
        if kept is not None and kept[0] == seq and time.monotonic() - kept[1] < NOW_REUSE:
            return kept[2], kept[3]
        as_of = dt.datetime.now(dt.UTC)
        found = self._judge(as_of)
        self._now = (seq, time.monotonic(), as_of, found)
        return as_of, found

    def _judge(self, as_of: dt.datetime) -> list[Violation]:
        with self.ledger.connect() as conn:
            found = projected(conn, self.settings, as_of)
            if found is not None:
                return found[0]
            with self._judged_lock:
                seq = last_seq(conn)
                kept = self._judged.get((seq, as_of))
                if kept is not None:
                    return kept
                self.log.info("judging the whole ledger", rows=seq, as_of=as_of.isoformat())
                court, feedback = history(conn)
                judged = judge(court, feedback, as_of, self.settings.deadlines(), self.settings.agencies)
                if len(self._judged) > 32:
                    self._judged.clear()
                self._judged[(seq, as_of)] = judged
                return judged

    def answers(self, days: int, until: dt.datetime, court_code: str | None = None) -> list[Answer]:
        """The agencies' answers to court acts recorded in the `days` days ending with `until`'s (in the courts'
        zone), for one court's entries or (None) all. A chart of days: one reading serves CHART_REUSE seconds,
        while the chain grows too (over a million events in the window it takes seconds: P6)."""
        kept = self._answers.get(court_code)
        if kept is not None and time.monotonic() - kept[0] < CHART_REUSE:
            return kept[1]
        since = window_start(self.settings.zone, days, until=until)
        with self.ledger.connect() as conn:
            rows = conn.execute(
                _ANSWERS, {"agencies": list(self.settings.agencies), "since": since, "court": court_code}
            )
            found = [Answer(r.agency, r.answered_at, r.court_at) for r in rows]
        self._answers[court_code] = (time.monotonic(), found)
        return found

    # -- audit verify's results ------------------------------------------------------------------

    def last_verification(self) -> Verified | None:
        with self.web.connect() as conn:
            row = conn.execute(
                text("select finished_at, passed, differences, summary from verifications order by id desc limit 1")
            ).first()
        return None if row is None else Verified(*row)

    # -- consumer lag ----------------------------------------------------------------------------

    def lag(self) -> dict[str, int | None]:
        """Records each consuming service has still to process now, from its stored offsets (the ones that
        count, hub/engine/engine.py) and the brokers' end offsets; None: not known (never started, or no answer).
        Measured at most every 5 seconds."""
        if self._lag is not None and time.monotonic() - self._lag[0] < 5:
            return self._lag[1]
        court = self.settings.topic(COURT_EVENTS)
        feedback = [self.settings.topic(feedback_topic(a)) for a in self.settings.agencies]
        wanted = {s: [court] + (feedback if s == "ledger" else []) for s in services_of(self.settings) if s != WEB}
        ends = self._ends({t for topics in wanted.values() for t in topics})
        out: dict[str, int | None] = {}
        for service, topics in wanted.items():
            try:
                with (self.ledger if service == "ledger" else self._service_db(service)).connect() as conn:
                    stored = {
                        (r.topic, r.partition): r.next_offset
                        for r in conn.execute(text("select topic, partition, next_offset from consumer_offsets"))
                    }
            except Exception as exc:  # not started yet, or the server is away: said as unknown
                self.log.debug("lag unknown", service=service, error=str(exc))
                out[service] = None
                continue
            if ends is None:
                out[service] = None
                continue
            out[service] = sum(
                max(high - stored.get((t, p), low), 0) for (t, p), (low, high) in ends.items() if t in topics
            )
        self._lag = (time.monotonic(), out)
        return out

    def _service_db(self, service: str) -> Engine:
        if service not in self._service_dbs:
            self._service_dbs[service] = engine_for(self.auditor, service, role=AUDITOR, pool_size=1)
        return self._service_dbs[service]

    def _ends(self, topics: set[str]) -> dict[tuple[str, int], tuple[int, int]] | None:
        try:
            with self._kafka_lock:
                if self._kafka is None:
                    self._kafka = consumer(self.settings, f"{self.settings.namespace}hub-audit-web", AUDITOR)
                listed = self._kafka.list_topics(timeout=3).topics
                out = {}
                for topic in topics:
                    for partition in listed[topic].partitions if topic in listed else ():
                        out[(topic, partition)] = self._kafka.get_watermark_offsets(
                            TopicPartition(topic, partition), timeout=2
                        )
                return out
        except Exception as exc:
            self.log.warning("end offsets not read", error=str(exc))
            return None
