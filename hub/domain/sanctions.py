"""What an agency does with each court event: pure decisions, no I/O (docs/design.md §6).

An agency keeps one record per list entry. The measures it enforces follow from those records alone:
a subject is restricted for a measure while any entry applies it (or a retention with a future end date
keeps it). Shielding one of two entries therefore lifts nothing for the subject, yet both entries get
their own feedback. Because every decision is a function of (record, event, time), the expected state
after any history can be computed without Kafka or SQL, by `replay`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Literal

from hub.domain.events import (
    CourtEvent,
    Debtor,
    FeedbackEvent,
    Included,
    SanctionApplied,
    SanctionFailed,
    SanctionLifted,
    SanctionRetained,
    unchecked,
)
from hub.domain.lifecycle import BINDING, Act, fold

FEEDBACK_NAMESPACE = uuid.UUID("6f1c1f3e-5b7a-4c1e-9a43-1d2b9f0e7c55")
_FEEDBACK_NAMESPACE_BYTES = FEEDBACK_NAMESPACE.bytes  # UUID.bytes is computed on every access


class Status(StrEnum):
    APPLIED = "APPLIED"  # the entry restricts its subject
    RETAINED = "RETAINED"  # shielded, but kept on a legal basis until `retain_until`
    LIFTED = "LIFTED"  # the entry no longer restricts anyone here
    REVOKED = "REVOKED"  # the listing was revoked (it had no basis): nothing is held, nor may be again
    FAILED = "FAILED"  # the agency could not apply it
    CLOSED = "CLOSED"  # acts known, none in effect yet (a shielding with no inclusion before it)


@dataclass(frozen=True)
class RetentionRule:
    """An agency must keep `measure` after the court lifts the entry, for `days`, citing `legal_basis`."""

    measure: str
    legal_basis: str
    days: int
    on: frozenset[str] = frozenset({"Shielded"})


@dataclass(frozen=True)
class AgencyPolicy:
    """The measures of one agency by debtor kind (docs/design.md §6), and on whom they fall."""

    name: str
    person_measures: tuple[str, ...]
    org_measures: tuple[str, ...]
    org_subject: Literal["DEBTOR", "LEGAL_REPRESENTATIVE"] = "DEBTOR"
    retention: tuple[RetentionRule, ...] = ()

    @property
    def measures(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.person_measures + self.org_measures))

    def measures_for(self, debtor: Debtor) -> tuple[str, ...]:
        return self.person_measures if debtor.kind == "PERSON" else self.org_measures

    def subject_for(self, debtor: Debtor) -> str:
        if debtor.kind == "ORG" and self.org_subject == "LEGAL_REPRESENTATIVE":
            assert debtor.legal_representative is not None  # guaranteed by validation
            return debtor.legal_representative.id_number
        return debtor.id_number

    def with_retention(self, rules: Iterable[RetentionRule]) -> AgencyPolicy:
        return replace(self, retention=tuple(rules))


@dataclass(frozen=True)
class EntrySanction:
    """The agency's record of one list entry."""

    entry_id: str
    debtor_id: str
    subject_id: str
    measures: tuple[str, ...]
    status: Status
    included_event_id: str | None
    closing_event_id: str | None = None
    retained: tuple[str, ...] = ()
    retain_until: dt.datetime | None = None
    acts: tuple[Act[str], ...] = ()  # the entry's binding court acts seen so far (item: the event id)

    def restrictions(self) -> list[tuple[str, str, dt.datetime | None]]:
        """(subject, measure, until) this entry supports; until None means for as long as it stands."""
        if self.status is Status.APPLIED:
            return [(self.subject_id, m, None) for m in self.measures]
        if self.status is Status.RETAINED:
            return [(self.subject_id, m, self.retain_until) for m in self.retained]
        return []


@dataclass(frozen=True)
class Outcome:
    """What one event did: the entry's new record (None: unchanged), the feedback, or why it was ignored."""

    entry: EntrySanction | None = None
    feedback: tuple[FeedbackEvent, ...] = ()
    ignored: str | None = None


def feedback_id(agency: str, court_event_id: str, kind: str, measures: Iterable[str], cause: str = "") -> str:
    """Derived from the effect, so re-doing the same effect after a crash re-sends the same event id."""
    key = "|".join((agency, court_event_id, kind, ",".join(measures), cause))
    return uuid5_text(_FEEDBACK_NAMESPACE_BYTES, key)


def uuid5_text(namespace: bytes, name: str) -> str:
    """`str(uuid.uuid5(...))` without building UUID objects, a quarter of its cost: every event an agency
    applies gets one (RFC 9562 §5.5: the SHA-1's first 128 bits, version 5, variant 10)."""
    h = hashlib.sha1(namespace + name.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _feedback(cls, policy: AgencyPolicy, entry: EntrySanction, court_event_id: str, measures, now, cause="", **extra):
    """Built from already validated inputs, so the model is constructed without validating again."""
    measures = tuple(measures)
    return unchecked(
        cls,
        {
            "event_id": feedback_id(policy.name, court_event_id, cls.__name__, measures, cause),
            "occurred_at": now,
            "agency": policy.name,
            "entry_id": entry.entry_id,
            "court_event_id": court_event_id,
            "debtor_id": entry.debtor_id,
            "subject_id": entry.subject_id,
            "measures": list(measures),
            "type": cls.__name__,
            **extra,
        },
    )


def decide(
    policy: AgencyPolicy, entry: EntrySanction | None, event: CourtEvent, now: dt.datetime, position: int = 0
) -> Outcome:
    """What the agency does with a court event, given its record of the entry.

    The entry's binding acts (inclusion, shielding, revocation) are folded in legal order by the one
    lifecycle the ledger and the audit use (hub/domain/lifecycle.py); the agency answers every act that
    newly took effect, in that order. So a shielding published before the inclusion it followed is answered,
    once the inclusion arrives, by SanctionApplied and then SanctionLifted; the subject ends unrestricted.
    `position` orders acts that happened at the same instant (the record's offset on its partition).
    """
    if event.event_type not in BINDING:
        return Outcome()  # risk warnings and correction steps change no sanction
    act = Act(event.event_type, event.occurred_at, position, event.event_id)
    record = entry or EntrySanction(
        entry_id=event.entry_id,
        debtor_id=event.debtor.id_number,
        subject_id=policy.subject_for(event.debtor),
        measures=(),
        status=Status.CLOSED,
        included_event_id=None,
    )
    if any(a.item == event.event_id for a in record.acts):
        return Outcome(ignored=f"{event.event_type} {event.event_id} already known")
    before = {a.item for a in fold(record.acts).accepted}
    record = replace(record, acts=(*record.acts, act))
    life = fold(record.acts)
    fresh = [a for a in life.accepted if a.item not in before]
    if not fresh:
        why = next(reason for a, reason in life.refused if a.item == event.event_id)
        return Outcome(record, ignored=f"{event.event_type} changes nothing here: {why}")
    feedback: list[FeedbackEvent] = []
    ignored = None
    for a in fresh:
        included = a.kind == "Included"
        outcome = _include(policy, record, event, now) if included else _release(policy, record, a, now)  # type: ignore[arg-type]
        record = outcome.entry or record
        feedback.extend(outcome.feedback)
        ignored = outcome.ignored or ignored
    return Outcome(record, tuple(feedback), ignored)


def _include(policy: AgencyPolicy, entry: EntrySanction, event: Included, now: dt.datetime) -> Outcome:
    """Only the event at hand can newly take effect as an inclusion: an inclusion never becomes valid later."""
    if entry.included_event_id is not None:
        if entry.status is not Status.APPLIED:
            return Outcome(ignored=f"Included ignored: an earlier-dated inclusion of an entry already {entry.status}")
        # Dated before the inclusion applied so far, it is now the entry's inclusion: answered the same way.
        record = replace(entry, included_event_id=event.event_id)
        return Outcome(record, (_feedback(SanctionApplied, policy, record, event.event_id, record.measures, now),))
    debtor = event.debtor
    measures = policy.measures_for(debtor)
    record = replace(
        entry,
        debtor_id=debtor.id_number,
        subject_id=policy.subject_for(debtor),
        measures=measures,
        status=Status.APPLIED if measures else Status.FAILED,
        included_event_id=event.event_id,
    )
    if not measures:
        reason = f"{policy.name} has no measures for {debtor.kind} debtors"
        planned = policy.measures
        failed = _feedback(SanctionFailed, policy, record, event.event_id, planned, now, reason=reason)
        return Outcome(record, (failed,))
    return Outcome(record, (_feedback(SanctionApplied, policy, record, event.event_id, measures, now),))


def _release(policy: AgencyPolicy, entry: EntrySanction, act: Act[str], now: dt.datetime) -> Outcome:
    event_id, revoked = act.item, act.kind == "Revoked"
    if entry.status is Status.FAILED and entry.closing_event_id is None:
        return Outcome(replace(entry, closing_event_id=event_id), ignored="entry was never applied here")
    if revoked and entry.status in (Status.RETAINED, Status.LIFTED):
        return _revoke_after_release(policy, entry, event_id, now)
    if entry.status is not Status.APPLIED:
        return Outcome(ignored=f"{act.kind} ignored: entry already {entry.status}")

    # Only a shielding may be followed by a retention: a revocation means the listing never had a basis.
    rules = {r.measure: r for r in policy.retention if not revoked and "Shielded" in r.on}
    kept = [m for m in entry.measures if m in rules]
    lifted = [m for m in entry.measures if m not in rules]
    feedback: list[FeedbackEvent] = []
    if lifted:
        feedback.append(_feedback(SanctionLifted, policy, entry, event_id, lifted, now))
    if not kept:
        status = Status.REVOKED if revoked else Status.LIFTED
        return Outcome(replace(entry, status=status, closing_event_id=event_id), tuple(feedback))
    # One end date for the entry: the longest of its rules, counted from the court's act.
    until = act.occurred_at + dt.timedelta(days=max(rules[m].days for m in kept))
    basis = "; ".join(dict.fromkeys(rules[m].legal_basis for m in kept))
    feedback.append(
        _feedback(SanctionRetained, policy, entry, event_id, kept, now, legal_basis=basis, retain_until=until)
    )
    retained = replace(
        entry, status=Status.RETAINED, closing_event_id=event_id, retained=tuple(kept), retain_until=until
    )
    return Outcome(retained, tuple(feedback))


def _revoke_after_release(policy: AgencyPolicy, entry: EntrySanction, event_id: str, now: dt.datetime) -> Outcome:
    """A listing found wrongful after it was shielded had no basis at all: whatever is still retained ends now,
    and the revocation is answered either way, so the court knows every unit has let go."""
    held = entry.retained if entry.status is Status.RETAINED else entry.measures
    lifted = _feedback(SanctionLifted, policy, entry, event_id, held, now)
    return Outcome(replace(entry, status=Status.REVOKED, retained=(), retain_until=None), (lifted,))


def expire(policy: AgencyPolicy, entry: EntrySanction, now: dt.datetime) -> Outcome | None:
    """A retention ends by itself at `retain_until`, with its own SanctionLifted."""
    if entry.status is not Status.RETAINED or entry.retain_until is None or entry.retain_until > now:
        return None
    assert entry.closing_event_id is not None
    lifted = _feedback(
        SanctionLifted, policy, entry, entry.closing_event_id, entry.retained, now, cause="retention-ended"
    )
    return Outcome(replace(entry, status=Status.LIFTED, retained=(), retain_until=None), (lifted,))


@dataclass
class AgencyState:
    """The whole of an agency's records, in memory: the reference for what the database must hold."""

    entries: dict[str, EntrySanction] = field(default_factory=dict)
    seen: set[str] = field(default_factory=set)
    feedback: list[FeedbackEvent] = field(default_factory=list)

    def restrictions(self, now: dt.datetime) -> dict[tuple[str, str], set[str]]:
        out: dict[tuple[str, str], set[str]] = {}
        for entry in self.entries.values():
            for subject, measure, until in entry.restrictions():
                if until is None or until > now:
                    out.setdefault((subject, measure), set()).add(entry.entry_id)
        return out


def replay(policy: AgencyPolicy, events: Iterable[CourtEvent], now: dt.datetime) -> AgencyState:
    """The state an agency must reach after `events` (in topic order), processed at `now`."""
    state = AgencyState()
    for event in events:
        if event.event_id in state.seen:
            continue
        position = len(state.seen)  # the first record's place: a republished copy changes nothing
        state.seen.add(event.event_id)
        outcome = decide(policy, state.entries.get(event.entry_id), event, now, position)
        if outcome.entry is not None:
            state.entries[outcome.entry.entry_id] = outcome.entry
        state.feedback.extend(outcome.feedback)
    for entry in list(state.entries.values()):
        ended = expire(policy, entry, now)
        if ended is not None and ended.entry is not None:
            state.entries[entry.entry_id] = ended.entry
            state.feedback.extend(ended.feedback)
    return state
