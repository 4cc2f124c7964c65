"""Automatic interception (自动拦截): is this subject restricted for this measure, right now?

Ticket offices and loan desks ask many thousands of times a second, so a checker answers from a compact
in-memory index of the agency's restrictions (hub.agency.index), which follows the agency's commits by
notification (hub.agency.follow): a lift reaches it within milliseconds, and retentions end on time because
each restriction carries its end. A BLOCKED answer is returned only once its interception record is durable,
in the agency's database by group commit or, while the database is away, in the local journal
(hub.agency.recorder); the agency's service turns the records into InterceptionRecorded feedback. The check
service (`hub agency serve`, hub.agency.api) and an embedded checker are the same object. The one-off CLI check
uses `cached=False`: it reads the database directly and records the block in the same transaction.

A checker connects as the agency's checker role (hub.db.checker_role): it reads restrictions and API keys and
inserts interceptions, and can do nothing else; it never migrates and never touches Kafka, so a ticket office's
host holds no credential that could publish or alter a sanction.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy import Engine

from consumers import load_policy
from hub.agency import store
from hub.agency.follow import Follower
from hub.agency.journal import Journal
from hub.agency.recorder import Recorder
from hub.agency.store import Interception
from hub.config import Settings
from hub.db import checker_role, engine_for, libpq_url, migrated
from hub.domain.ids import IdNumberError, validate_any_id


class CheckError(ValueError):
    """The question itself is wrong (an invalid ID number, a measure this agency does not have)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CheckResult:
    decision: Literal["ALLOWED", "BLOCKED"]
    subject: str
    measure: str
    entries: list[str]
    interception_id: str | None = None
    checked_at: float | None = field(default=None, compare=False)
    index_as_of: float | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        return {"decision": self.decision, "subject": self.subject, "measure": self.measure, "entries": self.entries}


def normalise_subject(subject: str) -> str:
    try:
        return validate_any_id(subject)
    except IdNumberError as exc:
        raise CheckError(f"subject {subject!r} is {exc}", "subject") from None


def journal_folder(settings: Settings) -> Path:
    return settings.check_journal_dir or settings.state_dir / "journal"


class InterceptionChecker:
    """`refresh`: seconds between the follower's heartbeats when no notification comes. `flush` is accepted for
    callers of the earlier API and ignored: blocks are durable when `check` returns."""

    def __init__(
        self,
        settings: Settings,
        agency: str,
        db: Engine | None = None,
        *,
        cached: bool = True,
        refresh: float = 1.0,
        flush: float | None = None,
        keys: bool = False,
    ):
        self.settings = settings
        self.policy = load_policy(agency, settings)
        role = checker_role(self.policy.name)
        self.db = db or engine_for(settings, agency, role=role, connect_args={"connect_timeout": 3})
        self.bits = {m: 1 << i for i, m in enumerate(self.policy.measures)}
        self.cached = cached
        self.follower: Follower | None = None
        self.recorder: Recorder | None = None
        if cached:
            url = libpq_url(settings.service_database_url(agency, role))
            self.follower = Follower(url, self.policy.measures, heartbeat=refresh, keys=keys)
            with migrated(self.policy.name, "a checker never migrates"):
                self.follower.load()
            journal = Journal(journal_folder(settings), f"{settings.namespace}{self.policy.name}")
            self.recorder = Recorder(url, journal)
            self.follower.start()

    # -- the question ------------------------------------------------------------------------------

    def question(self, subject: str, measure: str) -> str:
        """The subject normalised, once the question is known to make sense here (else CheckError)."""
        subject = normalise_subject(subject)
        if measure not in self.bits:
            raise CheckError(
                f"{measure!r} is not a measure of {self.policy.name}; measures: {', '.join(self.policy.measures)}",
                "measure",
            )
        return subject

    def check(self, subject: str, measure: str, channel: str = "api") -> CheckResult:
        if not self.cached:
            subject = self.question(subject, measure)
            with migrated(self.policy.name, "a checker never migrates"):
                return self._check_in_database(subject, measure, channel)
        results, durable = self.decide([(subject, measure, channel)])
        if durable is not None:
            durable.result()
        return results[0]

    def decide(self, questions: list[tuple[str, str, str]]) -> tuple[list[CheckResult], Future | None]:
        """Answers from the index, and a future that resolves once their blocks are durable (None: no block).
        Every question is validated before any is answered, so a bad one records nothing."""
        assert self.follower is not None and self.recorder is not None, "decide needs a cached checker"
        normalised = [(self.question(s, m), m, c) for s, m, c in questions]
        now = time.time()
        index, as_of = self.follower.index, self.follower.as_of
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        results, blocks = [], []
        for subject, measure, channel in normalised:
            entries = index.blocking(subject, measure, now)
            if not entries:
                results.append(CheckResult("ALLOWED", subject, measure, [], None, now, as_of))
                continue
            interception_id = str(uuid.uuid4())
            blocks.append((interception_id, at, subject, measure, channel, entries))
            results.append(CheckResult("BLOCKED", subject, measure, entries, interception_id, now, as_of))
        return results, self.recorder.record(blocks) if blocks else None

    def held(self, subject: str) -> list[tuple[str, str, float | None]]:
        """Every restriction of one subject in force now: (entry id, measure, until)."""
        assert self.follower is not None
        return self.follower.index.held(normalise_subject(subject), time.time())

    def _check_in_database(self, subject: str, measure: str, channel: str) -> CheckResult:
        now = time.time()
        with self.db.begin() as conn:
            entries = store.blocking_entries(conn, subject, measure, dt.datetime.fromtimestamp(now, dt.UTC))
            if not entries:
                return CheckResult("ALLOWED", subject, measure, [], None, now, now)
            interception_id = str(uuid.uuid4())
            at = dt.datetime.fromtimestamp(now, dt.UTC)
            block: Interception = (interception_id, at, subject, measure, channel, entries)
            store.record_interceptions(conn, [block])
        return CheckResult("BLOCKED", subject, measure, entries, interception_id, now, now)

    # -- the index and the records -----------------------------------------------------------------

    def refresh(self) -> int:
        """Catch up with the database now (the follower does so by itself on every commit)."""
        assert self.follower is not None
        return self.follower.refresh()

    def flush(self) -> None:
        """Wait until every block answered so far is durable (it already is when `check` returned)."""
        if self.recorder is not None:
            self.recorder.record([]).result()

    @property
    def index_as_of(self) -> float | None:
        return None if self.follower is None else self.follower.as_of

    def close(self) -> None:
        if self.follower is not None:
            self.follower.close()
        if self.recorder is not None:
            self.recorder.close()
        self.db.dispose()

    def __enter__(self) -> InterceptionChecker:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
