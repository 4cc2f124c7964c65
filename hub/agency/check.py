"""Automatic interception (自动拦截): is this subject restricted for this measure, right now?

Ticket offices and loan desks ask many thousands of times a second, so an embedded checker answers
from an in-memory index of the agency's restrictions, loaded once and refreshed from the entries that
changed (a lift reaches it within `refresh` seconds; retentions end on time because each restriction
carries its end). Blocks are written in the background every `flush` seconds to the agency's
`interceptions` table (`close()` writes what is left), and the agency's service turns them into
InterceptionRecorded feedback within a second: encoding them here would cost the ticket office more than
the check itself. The one-off CLI check uses `cached=False`: it reads the database directly and records the
block in the same transaction.

A checker connects as the agency's checker role (hub.db.checker_role): it reads restrictions and inserts
interceptions, and can do nothing else; it never migrates and never touches Kafka, so a ticket office's host
holds no credential that could publish or alter a sanction.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Engine, text

from consumers import load_policy
from hub.agency import store
from hub.config import Settings
from hub.db import checker_role, engine_for, migrated
from hub.domain.ids import IdNumberError, validate_any_id
from hub.log import get_logger


class CheckError(ValueError):
    """The question itself is wrong (an invalid ID number, a measure this agency does not have)."""


@dataclass(frozen=True)
class CheckResult:
    decision: Literal["ALLOWED", "BLOCKED"]
    subject: str
    measure: str
    entries: list[str]
    interception_id: str | None = None

    def as_dict(self) -> dict:
        return {"decision": self.decision, "subject": self.subject, "measure": self.measure, "entries": self.entries}


def normalise_subject(subject: str) -> str:
    try:
        return validate_any_id(subject)
    except IdNumberError as exc:
        raise CheckError(f"subject {subject!r} is {exc}") from None


PENDING_LIMIT = 20_000

# (measures bit mask, entry id, end as epoch seconds or None while the entry stands)
Restriction = tuple[int, str, float | None]


class InterceptionChecker:
    def __init__(
        self,
        settings: Settings,
        agency: str,
        db: Engine | None = None,
        *,
        cached: bool = True,
        refresh: float = 1.0,
        flush: float = 0.1,
    ):
        self.settings = settings
        self.policy = load_policy(agency, settings)
        self.db = db or engine_for(settings, agency, role=checker_role(self.policy.name))
        self.bits = {m: 1 << i for i, m in enumerate(self.policy.measures)}
        self.cached = cached
        self.log = get_logger("hub.check").bind(service=self.policy.name)
        self._index: dict[str, tuple[Restriction, ...]] = {}
        self._seen_change = 0
        self._pending: list[tuple[str, float, str, str, list[str], str]] = []
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        if cached:
            with migrated(self.policy.name, "a checker never migrates"):
                self._load()
            self._thread = threading.Thread(target=self._background, args=(refresh, flush), daemon=True)
            self._thread.start()

    # -- the question ------------------------------------------------------------------------------

    def check(self, subject: str, measure: str, channel: str = "api") -> CheckResult:
        subject = normalise_subject(subject)
        bit = self.bits.get(measure)
        if bit is None:
            raise CheckError(
                f"{measure!r} is not a measure of {self.policy.name}; measures: {', '.join(self.policy.measures)}"
            )
        if not self.cached:
            with migrated(self.policy.name, "a checker never migrates"):
                return self._check_in_database(subject, measure, channel)
        now = time.time()
        held = self._index.get(subject, ())
        entries = sorted(e for mask, e, until in held if mask & bit and (until is None or until > now))
        if not entries:
            return CheckResult("ALLOWED", subject, measure, [])
        interception_id = str(uuid.uuid4())
        with self._lock:
            self._pending.append((interception_id, now, subject, measure, entries, channel))
            backlog = len(self._pending)
        if backlog >= PENDING_LIMIT:
            self.flush()  # the writer fell behind: the caller writes, so memory stays bounded and nothing is lost
        return CheckResult("BLOCKED", subject, measure, entries, interception_id)

    def _check_in_database(self, subject: str, measure: str, channel: str) -> CheckResult:
        now = time.time()
        with self.db.begin() as conn:
            entries = store.blocking_entries(conn, subject, measure, dt.datetime.fromtimestamp(now, dt.UTC))
            if not entries:
                return CheckResult("ALLOWED", subject, measure, [])
            interception_id = str(uuid.uuid4())
            at = dt.datetime.fromtimestamp(now, dt.UTC)
            store.record_interceptions(conn, [(interception_id, at, subject, measure, channel, entries)])
        return CheckResult("BLOCKED", subject, measure, entries, interception_id)

    # -- recording blocks --------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the blocks recorded so far (the agency's service makes them feedback)."""
        with self._lock:
            blocks, self._pending = self._pending, []
        if blocks:
            with self.db.begin() as conn:
                store.record_interceptions(
                    conn,
                    ((i, dt.datetime.fromtimestamp(at, dt.UTC), s, m, c, e) for i, at, s, m, e, c in blocks),
                )

    # -- the index ---------------------------------------------------------------------------------

    def _load(self) -> None:
        started = time.perf_counter()
        with self.db.begin() as conn:
            self._seen_change = store.committed_changes(conn)
        with self.db.connect() as conn:
            rows = conn.execute(
                text(
                    "select subject_id, entry_id, extract(epoch from until) as until, array_agg(measure) as measures "
                    "from restrictions group by subject_id, entry_id, until"
                ).execution_options(stream_results=True, yield_per=20_000)
            )
            self._index = self._build(rows)
        self.log.info("interception index loaded", subjects=len(self._index), seconds=time.perf_counter() - started)

    def _build(self, rows) -> dict[str, tuple[Restriction, ...]]:
        index: dict[str, tuple[Restriction, ...]] = {}
        bits = self.bits
        for subject, entry_id, until, measures in rows:
            mask = 0
            for m in measures:
                mask |= bits.get(m, 0)
            item = (mask, entry_id, None if until is None else float(until))
            index[subject] = (*index.get(subject, ()), item)
        return index

    def refresh(self) -> int:
        """Re-read the subjects whose entries changed since the last look; returns how many."""
        with self.db.begin() as conn:
            upto = store.committed_changes(conn)
        if upto <= self._seen_change:
            return 0
        with self.db.connect() as conn:
            changed = conn.execute(
                text("select distinct subject_id from entries where change_seq > :seen and change_seq <= :upto"),
                {"seen": self._seen_change, "upto": upto},
            ).all()
            subjects = list({r.subject_id for r in changed})
            rows = conn.execute(
                text(
                    "select subject_id, entry_id, extract(epoch from until) as until, array_agg(measure) "
                    "from restrictions where subject_id = any(:subjects) group by subject_id, entry_id, until"
                ),
                {"subjects": subjects},
            )
            fresh = self._build(rows)
        for subject in subjects:
            if subject in fresh:
                self._index[subject] = fresh[subject]
            else:
                self._index.pop(subject, None)
        self._seen_change = upto
        return len(subjects)

    def _background(self, refresh: float, flush: float) -> None:
        last_refresh = time.monotonic()
        while not self._halt.wait(flush):
            try:
                self.flush()
                if time.monotonic() - last_refresh >= refresh:
                    last_refresh = time.monotonic()
                    self.refresh()
            except Exception as exc:  # the database may be restarting: keep answering, retry next round
                self.log.warning("interception index or recorder waiting", error=str(exc))

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def __enter__(self) -> InterceptionChecker:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
