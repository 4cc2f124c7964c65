"""What the web pages read, and from where: the register's public listings (as the `web` role, which can
see nothing else of it), the ledger and the services' stored offsets (as the auditor, read only), the
brokers' end offsets (as the auditor), and the desk's own database. Reading is all this module does.

The ledger's history is read once and kept until its chain grows (one cheap query tells), so every desk
page does not reread the whole chain.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from sqlalchemy import Engine, text

from hub.acl import AUDITOR
from hub.clients import consumer
from hub.config import ConfigError, Settings
from hub.db import REGISTER, WEB, engine_for, services_of
from hub.domain.lifecycle import Recorded
from hub.domain.rules import Violation, judge
from hub.ledger.service import history
from hub.log import get_logger
from hub.topics import COURT_EVENTS, feedback_topic

NOW_REUSE = 10.0  # seconds a judgement of "now" serves the desk's pages


@dataclass(frozen=True)
class LedgerView:
    """The ledger's records at one chain length, and the breaches judged from them (as of their reading)."""

    seq: int
    court: list[Recorded]
    feedback: list[Recorded]
    read_at: dt.datetime

    def entry(self, entry_id: str) -> tuple[list[Recorded], list[Recorded]]:
        court = [r for r in self.court if r.event.entry_id == entry_id]  # type: ignore[attr-defined]
        feedback = [
            r
            for r in self.feedback
            if r.event.entry_id == entry_id or entry_id in (getattr(r.event, "entry_ids", None) or ())  # type: ignore[attr-defined]
        ]
        return court, feedback

    def court_of(self, entry_id: str) -> str | None:
        return next((r.event.court_code for r in self.court if r.event.entry_id == entry_id), None)  # type: ignore[attr-defined]


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
        self._view: LedgerView | None = None
        self._view_lock = threading.Lock()
        self._judged: dict[tuple[int, dt.datetime], list[Violation]] = {}
        self._now: tuple[int, float, dt.datetime, list[Violation]] | None = None
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

    def ledger_view(self) -> LedgerView:
        with self._view_lock:
            with self.ledger.connect() as conn:
                seq = conn.execute(text("select coalesce(max(seq), 0) from ledger_events")).scalar_one()
                if self._view is None or self._view.seq != seq:
                    court, feedback = history(conn)
                    self._view = LedgerView(seq, court, feedback, dt.datetime.now(dt.UTC))
                    self._judged.clear()
            return self._view

    def breaches(self, view: LedgerView, as_of: dt.datetime | None = None) -> tuple[dt.datetime, list[Violation]]:
        """The ledger's breaches as of `as_of` (None: now), and that instant. Judging the whole history is the
        report's own function and not free, so a judgement is kept per chain length and instant, and one of
        "now" is reused for NOW_REUSE seconds while the chain has not grown (a deadline passing meanwhile shows
        that much later)."""
        if as_of is None:
            kept = self._now
            if kept is not None and kept[0] == view.seq and time.monotonic() - kept[1] < NOW_REUSE:
                return kept[2], kept[3]
            as_of = dt.datetime.now(dt.UTC)
            found = judge(view.court, view.feedback, as_of, self.settings.deadlines(), self.settings.agencies)
            self._now = (view.seq, time.monotonic(), as_of, found)
            return as_of, found
        key = (view.seq, as_of)
        found = self._judged.get(key)
        if found is None:
            found = judge(view.court, view.feedback, as_of, self.settings.deadlines(), self.settings.agencies)
            if len(self._judged) > 32:
                self._judged.clear()
            self._judged[key] = found
        return as_of, found

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
