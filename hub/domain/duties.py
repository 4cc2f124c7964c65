"""What each agency owed one entry, by when, and whether it was done in time: the oversight desk's
entry page (the Opinions' 及时反馈惩戒情况).

Each binding court act the entry's life accepted (hub/domain/lifecycle.py) asks every agency for an
answer: an inclusion SanctionApplied (or SanctionFailed, which the ledger judges), a shielding a lift or a
retention, a revocation a lift; a retention asks for a lift once it ends. The deadline is the ledger's
own (`Deadlines.agency_due`), so the page and `hub ledger report` never disagree on a date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hub.domain.history import first_records
from hub.domain.lifecycle import Recorded, lives
from hub.domain.rules import Deadlines

ANSWERS = {
    "Included": ("SanctionApplied", "SanctionFailed"),
    "Shielded": ("SanctionLifted", "SanctionRetained"),
    "Revoked": ("SanctionLifted",),
}


@dataclass(frozen=True)
class Duty:
    agency: str
    asked_by: str  # the court act (or "SanctionRetained": a retention that has to end)
    asked_event_id: str
    due_at: dt.datetime
    answers: tuple[Recorded, ...]  # the agency's answers to it, in record order
    done_at: dt.datetime | None  # when the first accepted answer was recorded
    met: bool | None  # None: not done and not yet due

    @property
    def status(self) -> str:
        return {True: "按时 on time", False: "逾期 late" if self.done_at else "未履行 not done"}.get(
            self.met, "待履行 pending"
        )


def _duty(agency: str, kind: str, event_id: str, due: dt.datetime, answers: list[Recorded], as_of: dt.datetime) -> Duty:
    done = min((r.recorded_at for r in answers), default=None)
    met = (done <= due) if done is not None else (False if as_of > due else None)
    return Duty(agency, kind, event_id, due, tuple(answers), done, met)


def entry_duties(
    court: Iterable[Recorded],
    feedback: Iterable[Recorded],
    agencies: Iterable[str],
    deadlines: Deadlines,
    as_of: dt.datetime,
    since: Mapping[str, dt.datetime | None],
) -> dict[str, list[Duty]]:
    """Per agency, the duties one entry's court acts gave it. `court` and `feedback` are that entry's records;
    `since` is each agency's start (`Deadlines.agency_start` over all its feedback)."""
    feedback = [r for r in first_records(feedback) if r.recorded_at <= as_of]
    life = next(iter(lives(r for r in first_records(court) if r.recorded_at <= as_of).values()), None)
    out: dict[str, list[Duty]] = {}
    for agency in agencies:
        own = [r for r in feedback if r.event.agency == agency]  # type: ignore[attr-defined]
        duties = out.setdefault(agency, [])
        for act in life.accepted if life else []:
            wanted = ANSWERS.get(act.kind)
            if wanted is None:
                continue
            record: Recorded = act.item
            answers = [
                r for r in own if r.event.court_event_id == record.event.event_id and r.event.event_type in wanted
            ]  # type: ignore[attr-defined]
            due = deadlines.agency_due(record, since.get(agency))
            duties.append(_duty(agency, act.kind, record.event.event_id, due, answers, as_of))
        for r in own:
            if r.event.event_type != "SanctionRetained":
                continue
            until: dt.datetime = r.event.retain_until  # type: ignore[attr-defined]
            kept = set(r.event.measures)  # type: ignore[attr-defined]
            lifts = [
                x
                for x in own
                if x.position > r.position and x.event.event_type == "SanctionLifted" and kept <= set(x.event.measures)
            ]  # type: ignore[attr-defined]
            duties.append(_duty(agency, "SanctionRetained", r.event.event_id, until + deadlines.agency, lifts, as_of))
    return out
