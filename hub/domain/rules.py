"""The compliance rules of the Opinions as pure functions of the recorded history.

A deadline is breached when the act it asks for had not happened by then and the deadline lies before
`as_of`; an act exactly at the deadline is on time. Court deadlines are legal periods (hub/domain/calendar.py)
counted from the courts' own business times (`occurred_at`, `served_at`, `received_at`, `performed_at`);
a shielding or revocation counts as done only once the hub has recorded it (one decided on time but
published weeks later kept the debtor barred all that time), except for records imported as history, and
every court act recorded later than the publication period is PUBLICATION_LATE.
Agency deadlines run from when the agency could first know: the broker's record of the court act, or
the agency's start, whichever is later, so an agency that joins late is not judged on years before it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hub.domain.calendar import LegalCalendar, Period
from hub.domain.events import CourtEvent, FeedbackEvent, Included, Shielded
from hub.domain.history import first_records
from hub.domain.lifecycle import EntryState, Life, Recorded, lives

COURT_RULES = (
    "INCLUDED_WITHOUT_RISK_WARNING",
    "CORRECTION_REVIEW_OVERDUE",
    "CORRECTION_UPHELD_NOT_REVOKED",
    "SHIELD_OVERDUE",
    "PERIOD_EXPIRED_NOT_SHIELDED",
    "RESTRICTED_WITHOUT_EMPLOYER_NOTICE",
    "ORPHAN_EVENT",
    "PUBLICATION_LATE",
    "EVENT_ID_CONFLICT",
)
AGENCY_RULES = (
    "SANCTION_NOT_APPLIED",
    "SANCTION_NOT_LIFTED",
    "RETENTION_EXPIRED_NOT_LIFTED",
    "SANCTION_FAILED",
    "WRONGFUL_SANCTION",
)
RULES = COURT_RULES + AGENCY_RULES
ONE_DAY, THREE_DAYS, TEN_DAYS = Period(1), Period(3), Period(10)  # the Opinions' periods


@dataclass(frozen=True)
class Deadlines:
    """Every period the rules count, each with its own unit, and the calendar they are counted in.

    Court periods are legal periods (see hub/domain/calendar.py); agency deadlines are hours from when the
    agency could first know of the court's act.
    """

    calendar: LegalCalendar = field(default_factory=LegalCalendar)
    correction_request: Period = TEN_DAYS
    review: Period = THREE_DAYS
    revoke: Period = THREE_DAYS
    shield: Period = THREE_DAYS
    period_grace: Period = THREE_DAYS
    publication: Period = ONE_DAY
    agency_hours: float = 24
    agency_since: Mapping[str, dt.datetime] = field(default_factory=dict)
    max_retention_days: int = 5 * 365 + 1
    check_tolerance: dt.timedelta = dt.timedelta(seconds=5)

    @property
    def agency(self) -> dt.timedelta:
        return dt.timedelta(hours=self.agency_hours)

    def due(self, act: dt.datetime, period: Period) -> dt.datetime:
        return self.calendar.deadline(act, period)

    def agency_due(self, court_record: Recorded, since: dt.datetime | None) -> dt.datetime:
        """An agency's deadline to answer a court act: from when it could first know of it (the broker's record,
        or the agency's start when that is later)."""
        known = court_record.recorded_at if since is None else max(court_record.recorded_at, since)
        return known + self.agency

    def agency_start(self, agency: str, feedback: Iterable[Recorded]) -> dt.datetime | None:
        """When the agency joined: HUB_AGENCY_SINCE, else its first feedback's record."""
        return self.agency_since.get(agency) or min((r.recorded_at for r in feedback), default=None)


@dataclass(frozen=True)
class Violation:
    rule: str
    party: str
    entry_id: str
    due_at: dt.datetime
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "party": self.party,
            "entry_id": self.entry_id,
            "due_at": self.due_at.isoformat(),
            "detail": self.detail,
        }


def _late(act_at: dt.datetime | None, due: dt.datetime, as_of: dt.datetime) -> bool:
    return as_of > due and (act_at is None or act_at > due)


def _effective(r: Recorded) -> dt.datetime:
    """When a court act took effect for the people it concerns: once it was decided and published."""
    return r.event.occurred_at if r.historical else max(r.event.occurred_at, r.recorded_at)


def _when(r: Recorded) -> str:
    event = r.event
    if r.historical or r.recorded_at <= event.occurred_at:
        return f"{event.occurred_at.isoformat()}"
    return f"{event.occurred_at.isoformat()} (recorded {r.recorded_at.isoformat()})"


@dataclass
class _Entry:
    """One entry's court record, as the rules need it: its life in legal order (hub/domain/lifecycle.py)."""

    entry_id: str
    court: str
    life: Life[Recorded]

    @property
    def state(self) -> EntryState | None:
        return self.life.state

    @property
    def warnings(self) -> list[CourtEvent]:
        return [r.event for r in self.life.of_kind("RiskWarningIssued")]  # type: ignore[misc]

    @property
    def included(self) -> Recorded | None:
        return self.life.first("Included")

    @property
    def closings(self) -> list[Recorded]:
        """The shielding or revocation, then possibly a revocation of the shielded entry."""
        return self.life.of_kind("Shielded", "Revoked")

    @property
    def closing(self) -> Recorded | None:
        closings = self.closings
        return closings[0] if closings else None

    @property
    def revocations(self) -> list[Recorded]:
        return self.life.of_kind("Revoked")

    @property
    def requests(self) -> list[CourtEvent]:
        return [r.event for r in self.life.of_kind("CorrectionRequested")]  # type: ignore[misc]

    @property
    def decisions(self) -> list[CourtEvent]:
        return [r.event for r in self.life.of_kind("CorrectionDecided")]  # type: ignore[misc]


class _Judge:
    def __init__(self, deadlines: Deadlines, as_of: dt.datetime):
        self.d = deadlines
        self.as_of = as_of
        self.violations: list[Violation] = []
        # The first instant after `as_of` at which a deadline judged here falls due: until then, with no new
        # record, the same history gives the same violations (hub/domain/projection.py relies on it).
        self.horizon: dt.datetime | None = None

    def late(self, act_at: dt.datetime | None, due: dt.datetime) -> bool:
        """`_late`, noting `due` as a horizon when the answer turns once `as_of` passes it (an act on time
        never turns)."""
        if due >= self.as_of and (act_at is None or act_at > due) and (self.horizon is None or due < self.horizon):
            self.horizon = due
        return _late(act_at, due, self.as_of)

    def flag(self, rule: str, party: str, entry_id: str, due: dt.datetime, detail: str) -> None:
        self.violations.append(Violation(rule, party, entry_id, due, detail))

    # -- courts ----------------------------------------------------------------------------------

    def court_record(self, court: list[Recorded]) -> dict[str, _Entry]:
        """Each entry's life as of `as_of`, folded in legal order; every act it refuses is an ORPHAN_EVENT."""
        known = [r for r in court if r.event.occurred_at <= self.as_of]
        entries: dict[str, _Entry] = {}
        for entry_id, life in lives(known).items():
            acts = life.accepted or [act for act, _why in life.refused]
            anchor = life.first("Included") or acts[0].item
            entry = entries[entry_id] = _Entry(entry_id, f"court:{anchor.event.court_code}", life)  # type: ignore[attr-defined]
            for act, why in life.refused:
                event = act.item.event
                self.flag(
                    "ORPHAN_EVENT", entry.court, entry_id, event.occurred_at, f"{act.kind} {event.event_id}: {why}"
                )
        for r in known:
            self.publication(entries[r.event.entry_id], r)  # type: ignore[attr-defined]
        return entries

    def conflicts(self, court: Iterable[Recorded]) -> None:
        """An event id names one court act: the same id again with other content is evidence of a fault."""
        first: dict[str, Recorded] = {}
        for r in sorted(court, key=lambda r: r.position):
            if r.recorded_at > self.as_of:
                continue
            seen = first.setdefault(r.event.event_id, r)
            if seen is not r and seen.event != r.event:
                event: CourtEvent = r.event  # type: ignore[assignment]
                self.flag(
                    "EVENT_ID_CONFLICT",
                    f"court:{event.court_code}",
                    event.entry_id,
                    r.recorded_at,
                    f"{event.event_type} {event.event_id} recorded {r.recorded_at.isoformat()} with content other "
                    f"than the {seen.event.event_type} recorded under that id {seen.recorded_at.isoformat()}; "
                    "the first is the one in effect",
                )

    def publication(self, entry: _Entry, r: Recorded) -> None:
        """A court act must reach the hub promptly: the units it binds learn of it only from the topic."""
        if r.historical:
            return
        event = r.event
        due = self.d.due(event.occurred_at, self.d.publication)
        if self.late(r.recorded_at, due):
            self.flag(
                "PUBLICATION_LATE",
                entry.court,
                entry.entry_id,
                due,
                f"{event.event_type} {event.event_id} of {event.occurred_at.isoformat()} recorded "
                f"{r.recorded_at.isoformat()}, more than {self.d.publication} later",
            )

    def court_rules(self, entry: _Entry) -> None:
        if entry.included is None:
            return
        included: Included = entry.included.event  # type: ignore[assignment]
        at = included.occurred_at
        if not any(w.served_at <= at for w in entry.warnings):  # type: ignore[attr-defined]
            self.flag(
                "INCLUDED_WITHOUT_RISK_WARNING",
                entry.court,
                entry.entry_id,
                at,
                f"Included {included.event_id} with no earlier risk warning",
            )
        if included.disclosure == "RESTRICTED" and included.employer_notified is None:
            self.flag(
                "RESTRICTED_WITHOUT_EMPLOYER_NOTICE",
                entry.court,
                entry.entry_id,
                at,
                f"Included {included.event_id} is RESTRICTED but no employer was notified",
            )
        served = included.served_at or at
        window = self.d.due(served, self.d.correction_request)
        for number, request in enumerate(entry.requests):
            decision = entry.decisions[number] if number < len(entry.decisions) else None
            received = request.received_at  # type: ignore[attr-defined]
            if received > window:
                self.flag(
                    "ORPHAN_EVENT",
                    entry.court,
                    entry.entry_id,
                    window,
                    f"correction request received {received.isoformat()}, after the "
                    f"{self.d.correction_request} window from {'service' if included.served_at else 'inclusion'} "
                    f"{served.isoformat()}",
                )
            due = self.d.due(received, self.d.review)
            decided_at = decision.occurred_at if decision is not None else None
            if self.late(decided_at, due):
                self.flag(
                    "CORRECTION_REVIEW_OVERDUE",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"correction received {received.isoformat()} "
                    + (f"decided {decided_at.isoformat()}" if decided_at else "not decided"),
                )
            if decision is not None and decision.outcome == "UPHELD":  # type: ignore[attr-defined]
                due = self.d.due(decision.occurred_at, self.d.revoke)
                first = min(entry.revocations, key=_effective, default=None)
                if self.late(_effective(first) if first else None, due):
                    self.flag(
                        "CORRECTION_UPHELD_NOT_REVOKED",
                        entry.court,
                        entry.entry_id,
                        due,
                        f"correction upheld {decision.occurred_at.isoformat()}, "
                        + (f"revoked {_when(first)}" if first else "not revoked"),
                    )
        closing = entry.closing
        shielding = closing.event if closing else None
        if closing and isinstance(shielding, Shielded) and shielding.performed_at is not None:
            due = self.d.due(shielding.performed_at, self.d.shield)
            if self.late(_effective(closing), due):
                self.flag(
                    "SHIELD_OVERDUE",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"performed {shielding.performed_at.isoformat()}, shielded {_when(closing)}",
                )
        if included.period_months is not None:
            expiry = self.d.calendar.months_end(at, included.period_months)
            due = self.d.due(expiry - dt.timedelta(microseconds=1), self.d.period_grace)
            if self.late(_effective(closing) if closing else None, due):
                self.flag(
                    "PERIOD_EXPIRED_NOT_SHIELDED",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"{included.period_months}-month period ended {expiry.isoformat()}, "
                    + (f"closed {_when(closing)}" if closing else "still active"),
                )

    # -- agencies --------------------------------------------------------------------------------

    def agency_rules(self, agency: str, entries: dict[str, _Entry], feedback: list[Recorded]) -> None:
        party = f"agency:{agency}"
        since = self.d.agency_start(agency, feedback)

        def due_after(court_record: Recorded) -> dt.datetime:
            return self.d.agency_due(court_record, since)

        known = [r for r in feedback if r.recorded_at <= self.as_of]
        answers: dict[str, list[Recorded]] = {}
        by_entry: dict[str, list[Recorded]] = {}
        for r in known:
            event: FeedbackEvent = r.event  # type: ignore[assignment]
            if event.court_event_id is not None:
                answers.setdefault(event.court_event_id, []).append(r)
            by_entry.setdefault(event.entry_id, []).append(r)
        for entry in entries.values():
            if entry.included is None or entry.included.recorded_at > self.as_of:
                continue
            included: Included = entry.included.event  # type: ignore[assignment]
            due = due_after(entry.included)
            replies = answers.get(included.event_id, [])
            applied = [r for r in replies if r.event.event_type == "SanctionApplied"]
            failed = [r for r in replies if r.event.event_type == "SanctionFailed"]
            first_applied = min((r.recorded_at for r in applied), default=None)
            first_answer = min((r.recorded_at for r in applied + failed), default=None)
            if self.late(first_answer, due):
                self.flag(
                    "SANCTION_NOT_APPLIED",
                    party,
                    entry.entry_id,
                    due,
                    f"no SanctionApplied or SanctionFailed for Included {included.event_id}",
                )
            elif failed and self.late(first_applied, due):
                reason = failed[0].event.reason  # type: ignore[attr-defined]
                self.flag(
                    "SANCTION_FAILED",
                    party,
                    entry.entry_id,
                    due,
                    f"SanctionFailed ({reason}) not followed by SanctionApplied",
                )
            subjects = {included.debtor.id_number}
            if included.debtor.legal_representative is not None:
                subjects.add(included.debtor.legal_representative.id_number)
            for r in applied:
                if r.event.subject_id not in subjects:  # type: ignore[attr-defined]
                    self.flag(
                        "WRONGFUL_SANCTION",
                        party,
                        entry.entry_id,
                        r.recorded_at,
                        f"SanctionApplied {r.event.event_id} on {r.event.subject_id}, "  # type: ignore[attr-defined]
                        "who is neither the debtor nor its legal representative",
                    )
            if applied:
                self.releases(party, entry, answers, by_entry.get(entry.entry_id, []), due_after)

    def releases(self, party: str, entry: _Entry, answers, own: list[Recorded], due_after) -> None:
        """Every closing of an applied entry must be answered: a shielding by a lift or a retention, a
        revocation (the listing had no basis) by a lift of whatever is still held, retentions included."""
        for number, closing in enumerate(entry.closings):
            if closing.recorded_at > self.as_of:
                continue
            event = closing.event
            revoked = event.event_type == "Revoked"
            if number > 0 and not _held(own, closing.recorded_at):
                continue  # a revocation after a lift: nothing left to release
            accepted = ("SanctionLifted",) if revoked else ("SanctionLifted", "SanctionRetained")
            replies = [r for r in answers.get(event.event_id, []) if r.event.event_type in accepted]
            due = due_after(closing)
            if self.late(min((r.recorded_at for r in replies), default=None), due):
                self.flag(
                    "SANCTION_NOT_LIFTED",
                    party,
                    entry.entry_id,
                    due,
                    f"entry {event.event_type.lower()} by {event.event_id}, no "
                    + (
                        "SanctionLifted (a revocation ends every retention)"
                        if revoked
                        else "SanctionLifted or SanctionRetained"
                    ),
                )

    def retentions(
        self, agency: str, feedback: list[Recorded], court_by_id: dict[str, Recorded], entries: dict[str, _Entry]
    ) -> None:
        party = f"agency:{agency}"
        lifts: dict[str, list[Recorded]] = {}
        for r in feedback:
            if r.event.event_type == "SanctionLifted":
                lifts.setdefault(r.event.entry_id, []).append(r)  # type: ignore[attr-defined]
        for r in feedback:
            if r.event.event_type != "SanctionRetained" or r.recorded_at > self.as_of:
                continue
            event = r.event
            until: dt.datetime = event.retain_until  # type: ignore[attr-defined]
            cause = court_by_id.get(event.court_event_id or "")  # type: ignore[attr-defined]
            if cause is not None:
                act = cause.event.occurred_at
                bound = act + dt.timedelta(days=self.d.max_retention_days)
                if cause.event.event_type == "Revoked":
                    wrong = "after a revocation, which leaves no basis for any sanction"
                elif until <= act:
                    wrong = f"until {until.isoformat()}, not after the court's act of {act.isoformat()}"
                elif until > bound:
                    wrong = f"until {until.isoformat()}, beyond the {self.d.max_retention_days}-day bound"
                else:
                    wrong = None
                if wrong:
                    self.flag("WRONGFUL_SANCTION", party, event.entry_id, r.recorded_at, f"SanctionRetained {wrong}")  # type: ignore[attr-defined]
            due = until + self.d.agency
            kept = set(event.measures)  # type: ignore[attr-defined]
            ends = [
                x.recorded_at
                for x in lifts.get(event.entry_id, [])  # type: ignore[attr-defined]
                if x.position > r.position and kept <= set(x.event.measures)  # type: ignore[attr-defined]
            ]
            if self.late(min(ends, default=None), due):
                self.flag(
                    "RETENTION_EXPIRED_NOT_LIFTED",
                    party,
                    event.entry_id,  # type: ignore[attr-defined]
                    due,
                    f"retained until {until.isoformat()}, not lifted",
                )

    def interceptions(self, agency: str, feedback: list[Recorded], entries: dict[str, _Entry]) -> None:
        """A block is lawful if, when the check was made, one of its entries restricted that subject for that
        measure here: included and recorded, not yet closed (or kept by a retention), and applied by this agency
        to this subject with this measure. The tolerance allows for the checker's index refresh."""
        tolerance = self.d.check_tolerance
        supports: dict[str, list[FeedbackEvent]] = {}
        for r in feedback:
            if r.event.event_type in ("SanctionApplied", "SanctionRetained"):
                supports.setdefault(r.event.entry_id, []).append(r.event)  # type: ignore[attr-defined,arg-type]
        for r in feedback:
            if r.event.event_type != "InterceptionRecorded" or r.recorded_at > self.as_of:
                continue
            block = r.event
            at = block.occurred_at
            subject, measure = block.subject_id, block.measure  # type: ignore[attr-defined]
            covering = [
                entry_id
                for entry_id in block.entry_ids  # type: ignore[attr-defined]
                if self._covered(entries.get(entry_id), supports.get(entry_id, []), subject, measure, at, tolerance)
            ]
            if not covering:
                self.flag(
                    "WRONGFUL_SANCTION",
                    f"agency:{agency}",
                    block.entry_id,  # type: ignore[attr-defined]
                    at,
                    f"InterceptionRecorded {block.event_id} blocked {subject} for {measure} at {at.isoformat()} "
                    "while no active entry or retention here restricted that subject for that measure",
                )

    @staticmethod
    def _covered(entry, supports, subject, measure, at, tolerance) -> bool:
        if entry is None or entry.included is None or entry.included.recorded_at > at + tolerance:
            return False
        closing = entry.closing
        open_then = closing is None or closing.recorded_at > at - tolerance
        revoked = next((c for c in entry.closings if c.event.event_type == "Revoked"), None)
        for s in supports:
            if s.subject_id != subject:
                continue
            if s.event_type == "SanctionApplied" and open_then and measure in s.measures:
                return True
            if (
                s.event_type == "SanctionRetained"
                and measure in s.measures
                and s.retain_until > at - tolerance  # type: ignore[attr-defined]
                and (revoked is None or revoked.recorded_at > at - tolerance)
            ):
                return True
        return False


def _held(own: list[Recorded], at: dt.datetime) -> bool:
    """Whether the agency's own feedback about one entry still kept a measure in force at `at`."""
    held: dict[str, dt.datetime | None] = {}
    for r in sorted(own, key=lambda r: r.position):
        if r.recorded_at > at:
            break
        event = r.event
        if event.event_type == "SanctionApplied":
            held.update(dict.fromkeys(event.measures))  # type: ignore[attr-defined]
        elif event.event_type == "SanctionLifted":
            for m in event.measures:  # type: ignore[attr-defined]
                held.pop(m, None)
        elif event.event_type == "SanctionRetained":
            held.update(dict.fromkeys(event.measures, event.retain_until))  # type: ignore[attr-defined]
    return any(until is None or until > at for until in held.values())


def court_view(court: Iterable[Recorded], as_of: dt.datetime) -> dict[str, EntryState | None]:
    """Each entry's state as the rules see it (what they judge the agencies against)."""
    judge = _Judge(Deadlines(), as_of)
    return {entry_id: entry.state for entry_id, entry in judge.court_record(first_records(court)).items()}


def ordered(violations: Iterable[Violation]) -> list[Violation]:
    """The report's order: by due time, then party, entry and rule."""
    return sorted(violations, key=lambda v: (v.due_at, v.party, v.entry_id, v.rule))


def judge(
    court: Iterable[Recorded],
    feedback: Iterable[Recorded],
    as_of: dt.datetime,
    deadlines: Deadlines | None = None,
    agencies: Iterable[str] = (),
) -> list[Violation]:
    """Every breach as of `as_of`, ordered by due time."""
    return judge_until(court, feedback, as_of, deadlines, agencies)[0]


def judge_until(
    court: Iterable[Recorded],
    feedback: Iterable[Recorded],
    as_of: dt.datetime,
    deadlines: Deadlines | None = None,
    agencies: Iterable[str] = (),
) -> tuple[list[Violation], dt.datetime | None]:
    """The breaches as of `as_of`, and until when they stay so: the same history judged at any instant from
    `as_of` up to (not including) that horizon gives the same breaches; None is never, with no new record."""
    judge = _Judge(deadlines or Deadlines(), as_of)
    court, feedback = list(court), list(feedback)
    judge.conflicts(court)
    court_records = first_records(court)
    entries = judge.court_record(court_records)
    for entry in entries.values():
        judge.court_rules(entry)
    court_by_id = {r.event.event_id: r for r in court_records}
    by_agency: dict[str, list[Recorded]] = {a: [] for a in agencies}
    for r in first_records(feedback):
        by_agency.setdefault(r.event.agency, []).append(r)  # type: ignore[attr-defined]
    for agency, records in by_agency.items():
        judge.agency_rules(agency, entries, records)
        judge.retentions(agency, records, court_by_id, entries)
        judge.interceptions(agency, records, entries)
    violations = ordered(judge.violations)
    # A record stamped after `as_of` (a clock ahead, an act dated in the future) joins the judgement later.
    later = [t for r in court + feedback for t in (r.recorded_at, r.event.occurred_at) if t > as_of]
    return violations, min([*later, *([judge.horizon] if judge.horizon else [])], default=None)
