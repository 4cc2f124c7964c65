"""The compliance rules of the Opinions (DESIGN §8) as pure functions of the recorded history.

A deadline is breached when the act it asks for had not happened by then and the deadline lies before
`as_of`; an act exactly at the deadline is on time. Court deadlines run on the courts' own business
times (`occurred_at`, `received_at`, `performed_at`); agency deadlines run from the broker timestamp of
the court record, which is when the agency could first know of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from hub.domain.calendar import DayCounter, add_months
from hub.domain.events import CourtEvent, FeedbackEvent, Included, Shielded
from hub.domain.history import Recorded, first_records
from hub.domain.lifecycle import EntryState, step

COURT_RULES = (
    "INCLUDED_WITHOUT_RISK_WARNING",
    "CORRECTION_REVIEW_OVERDUE",
    "CORRECTION_UPHELD_NOT_REVOKED",
    "SHIELD_OVERDUE",
    "PERIOD_EXPIRED_NOT_SHIELDED",
    "RESTRICTED_WITHOUT_EMPLOYER_NOTICE",
    "ORPHAN_EVENT",
)
AGENCY_RULES = (
    "SANCTION_NOT_APPLIED",
    "SANCTION_NOT_LIFTED",
    "RETENTION_EXPIRED_NOT_LIFTED",
    "SANCTION_FAILED",
    "WRONGFUL_SANCTION",
)
RULES = COURT_RULES + AGENCY_RULES


@dataclass(frozen=True)
class Deadlines:
    correction_request_days: int = 10
    review_days: int = 3
    revoke_days: int = 3
    shield_days: int = 3
    period_grace_days: int = 3
    agency_hours: int = 24
    days: DayCounter = field(default_factory=DayCounter.calendar_days)

    @property
    def agency(self) -> dt.timedelta:
        return dt.timedelta(hours=self.agency_hours)


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


@dataclass
class _Entry:
    """One entry's court record, as the rules need it."""

    entry_id: str
    court: str
    state: EntryState | None = None
    warnings: list[CourtEvent] = field(default_factory=list)
    included: Recorded | None = None
    closing: Recorded | None = None
    requests: list[CourtEvent] = field(default_factory=list)
    decisions: list[CourtEvent] = field(default_factory=list)
    revocations: list[CourtEvent] = field(default_factory=list)


class _Judge:
    def __init__(self, deadlines: Deadlines, as_of: dt.datetime):
        self.d = deadlines
        self.as_of = as_of
        self.violations: list[Violation] = []

    def flag(self, rule: str, party: str, entry_id: str, due: dt.datetime, detail: str) -> None:
        self.violations.append(Violation(rule, party, entry_id, due, detail))

    # -- courts ----------------------------------------------------------------------------------

    def court_record(self, court: list[Recorded]) -> dict[str, _Entry]:
        entries: dict[str, _Entry] = {}
        for r in sorted(court, key=lambda r: r.position):
            event: CourtEvent = r.event  # type: ignore[assignment]
            if event.occurred_at > self.as_of:
                continue
            entry = entries.setdefault(event.entry_id, _Entry(event.entry_id, f"court:{event.court_code}"))
            moved = step(entry.state, event, len(entry.requests) > len(entry.decisions))
            if moved.refused:
                self.flag(
                    "ORPHAN_EVENT",
                    entry.court,
                    entry.entry_id,
                    event.occurred_at,
                    f"{event.event_type} {event.event_id}: {moved.refused}",
                )
                continue
            entry.state = moved.state
            kind = event.event_type
            if kind == "RiskWarningIssued":
                entry.warnings.append(event)
            elif kind == "Included":
                entry.included = r
            elif kind == "CorrectionRequested":
                entry.requests.append(event)
            elif kind == "CorrectionDecided":
                entry.decisions.append(event)
            elif kind in ("Shielded", "Revoked"):
                if entry.closing is None:
                    entry.closing = r
                if kind == "Revoked":
                    entry.revocations.append(event)
        return entries

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
        window = self.d.days.add(at, self.d.correction_request_days)
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
                    f"{self.d.correction_request_days}-day window",
                )
            due = self.d.days.add(received, self.d.review_days)
            decided_at = decision.occurred_at if decision is not None else None
            if _late(decided_at, due, self.as_of):
                self.flag(
                    "CORRECTION_REVIEW_OVERDUE",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"correction received {received.isoformat()} "
                    + (f"decided {decided_at.isoformat()}" if decided_at else "not decided"),
                )
            if decision is not None and decision.outcome == "UPHELD":  # type: ignore[attr-defined]
                due = self.d.days.add(decision.occurred_at, self.d.revoke_days)
                revoked_at = min((r.occurred_at for r in entry.revocations), default=None)
                if _late(revoked_at, due, self.as_of):
                    self.flag(
                        "CORRECTION_UPHELD_NOT_REVOKED",
                        entry.court,
                        entry.entry_id,
                        due,
                        f"correction upheld {decision.occurred_at.isoformat()}, "
                        + (f"revoked {revoked_at.isoformat()}" if revoked_at else "not revoked"),
                    )
        closing = entry.closing.event if entry.closing else None
        if isinstance(closing, Shielded) and closing.performed_at is not None:
            due = self.d.days.add(closing.performed_at, self.d.shield_days)
            if _late(closing.occurred_at, due, self.as_of):
                self.flag(
                    "SHIELD_OVERDUE",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"performed {closing.performed_at.isoformat()}, shielded {closing.occurred_at.isoformat()}",
                )
        if included.period_months is not None:
            expiry = add_months(at, included.period_months)
            due = self.d.days.add(expiry, self.d.period_grace_days)
            closed_at = closing.occurred_at if closing else None
            if _late(closed_at, due, self.as_of):
                self.flag(
                    "PERIOD_EXPIRED_NOT_SHIELDED",
                    entry.court,
                    entry.entry_id,
                    due,
                    f"{included.period_months}-month period ended {expiry.isoformat()}, "
                    + (f"closed {closed_at.isoformat()}" if closed_at else "still active"),
                )

    # -- agencies --------------------------------------------------------------------------------

    def agency_rules(self, agency: str, entries: dict[str, _Entry], answers: dict[str, list[Recorded]]) -> None:
        party = f"agency:{agency}"
        for entry in entries.values():
            if entry.included is None or entry.included.recorded_at > self.as_of:
                continue
            included: Included = entry.included.event  # type: ignore[assignment]
            due = entry.included.recorded_at + self.d.agency
            replies = answers.get(included.event_id, [])
            applied = [r for r in replies if r.event.event_type == "SanctionApplied"]
            failed = [r for r in replies if r.event.event_type == "SanctionFailed"]
            first_applied = min((r.recorded_at for r in applied), default=None)
            first_answer = min((r.recorded_at for r in applied + failed), default=None)
            if _late(first_answer, due, self.as_of):
                self.flag(
                    "SANCTION_NOT_APPLIED",
                    party,
                    entry.entry_id,
                    due,
                    f"no SanctionApplied or SanctionFailed for Included {included.event_id}",
                )
            elif failed and _late(first_applied, due, self.as_of):
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
            if not applied or entry.closing is None or entry.closing.recorded_at > self.as_of:
                continue
            closing = entry.closing
            due = closing.recorded_at + self.d.agency
            releases = [
                r
                for r in answers.get(closing.event.event_id, [])
                if r.event.event_type in ("SanctionLifted", "SanctionRetained")
            ]
            if _late(min((r.recorded_at for r in releases), default=None), due, self.as_of):
                self.flag(
                    "SANCTION_NOT_LIFTED",
                    party,
                    entry.entry_id,
                    due,
                    f"entry {closing.event.event_type.lower()} by {closing.event.event_id}, "
                    "no SanctionLifted or SanctionRetained",
                )

    def retentions(self, agency: str, feedback: list[Recorded]) -> None:
        lifted: dict[tuple[str, str], list[Recorded]] = {}
        for r in feedback:
            if r.event.event_type == "SanctionLifted":
                lifted.setdefault((r.event.entry_id, r.event.court_event_id), []).append(r)  # type: ignore[attr-defined]
        for r in feedback:
            if r.event.event_type != "SanctionRetained" or r.recorded_at > self.as_of:
                continue
            event = r.event
            due = event.retain_until + self.d.agency  # type: ignore[attr-defined]
            kept = set(event.measures)  # type: ignore[attr-defined]
            ends = [
                x.recorded_at
                for x in lifted.get((event.entry_id, event.court_event_id), [])  # type: ignore[attr-defined]
                if x.position > r.position and kept <= set(x.event.measures)  # type: ignore[attr-defined]
            ]
            if _late(min(ends, default=None), due, self.as_of):
                self.flag(
                    "RETENTION_EXPIRED_NOT_LIFTED",
                    f"agency:{agency}",
                    event.entry_id,
                    due,  # type: ignore[attr-defined]
                    f"retained until {event.retain_until.isoformat()}, not lifted",
                )  # type: ignore[attr-defined]

    def interceptions(
        self, agency: str, feedback: list[Recorded], entries: dict[str, _Entry], retained: dict[str, dt.datetime]
    ) -> None:
        for r in feedback:
            if r.event.event_type != "InterceptionRecorded" or r.recorded_at > self.as_of:
                continue
            at = r.recorded_at
            covering = []
            for entry_id in r.event.entry_ids:  # type: ignore[attr-defined]
                entry = entries.get(entry_id)
                if entry is None or entry.included is None or entry.included.recorded_at > at:
                    continue
                open_then = entry.closing is None or entry.closing.recorded_at > at
                if open_then or retained.get(entry_id, at) > at:
                    covering.append(entry_id)
            if not covering:
                self.flag(
                    "WRONGFUL_SANCTION",
                    f"agency:{agency}",
                    r.event.entry_id,
                    at,  # type: ignore[attr-defined]
                    f"InterceptionRecorded {r.event.event_id} blocked {r.event.subject_id} "  # type: ignore[attr-defined]
                    "while no active entry or retention covered it",
                )


def judge(
    court: Iterable[Recorded],
    feedback: Iterable[Recorded],
    as_of: dt.datetime,
    deadlines: Deadlines | None = None,
    agencies: Iterable[str] = (),
) -> list[Violation]:
    """Every breach as of `as_of`, ordered by due time."""
    judge = _Judge(deadlines or Deadlines(), as_of)
    entries = judge.court_record(first_records(court))
    for entry in entries.values():
        judge.court_rules(entry)
    by_agency: dict[str, list[Recorded]] = {a: [] for a in agencies}
    for r in first_records(feedback):
        by_agency.setdefault(r.event.agency, []).append(r)  # type: ignore[attr-defined]
    for agency, records in by_agency.items():
        answers: dict[str, list[Recorded]] = {}
        retained: dict[str, dt.datetime] = {}
        for r in records:
            event: FeedbackEvent = r.event  # type: ignore[assignment]
            if r.recorded_at <= as_of and event.court_event_id is not None:
                answers.setdefault(event.court_event_id, []).append(r)
            if event.event_type == "SanctionRetained":
                retained[event.entry_id] = event.retain_until  # type: ignore[attr-defined]
        judge.agency_rules(agency, entries, answers)
        judge.retentions(agency, records)
        judge.interceptions(agency, records, entries, retained)
    return sorted(judge.violations, key=lambda v: (v.due_at, v.party, v.entry_id, v.rule))
