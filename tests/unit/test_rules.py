"""Each compliance rule: a case that breaches it, and one exactly on its deadline that does not.

Court deadlines are legal periods (hub/domain/calendar.py): the day of the act is not counted, a period
of N days ends at 24:00 of its N-th day in Asia/Shanghai, carried to the next working day past rest days
and holidays of the official calendar (with its make-up working days). Every date below is chosen for
the weekday or holiday it falls on; `end_of(...)` is 24:00 of that day, the instant a deadline ends.
Agency deadlines are hours from when the agency could first know of the court's act.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import itertools
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.calendar import LegalCalendar, Period
from hub.domain.events import parse_event
from hub.domain.history import Recorded
from hub.domain.rules import Deadlines, Violation, judge
from tests.support import COURT_TYPES, ORG, ORG_ID, PERSON, PERSON_ID, REP_ID, court_sample, feedback_sample

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # a Monday
INCLUDED_AT = dt.datetime(2026, 3, 3, 10, 0, tzinfo=CST)  # the Tuesday after: the correction window ends 13 March
DAY, HOUR, SECOND = dt.timedelta(days=1), dt.timedelta(hours=1), dt.timedelta(seconds=1)
LATER = T0 + 400 * DAY  # long after every deadline of these histories
DEADLINES = Deadlines()  # one calendar for all tests: its working-day cache is shared
_SAMPLES = {kind: court_sample(kind) for kind in COURT_TYPES}
_ids = itertools.count(1)
_positions = itertools.count(1)


def on(month: int, day: int, hour: int = 9, minute: int = 0, year: int = 2026) -> dt.datetime:
    """A time on a day of 2026 (unless told), in Beijing."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=CST)


def end_of(month: int, day: int, year: int = 2026) -> dt.datetime:
    """24:00 of that day in Beijing, i.e. the first instant of the next: where a legal period ends."""
    return dt.datetime(year, month, day, tzinfo=CST) + DAY


def at(moment: dt.datetime) -> str:
    return moment.isoformat()


def with_deadlines(**changes: Any) -> Deadlines:
    return dataclasses.replace(DEADLINES, **changes)


# -- building histories -------------------------------------------------------------------------------


def court(
    kind: str,
    when: dt.datetime,
    entry: str = "E1",
    recorded: dt.datetime | None = None,
    historical: bool = False,
    debtor: dict[str, Any] = PERSON,
    **fields: Any,
) -> Recorded:
    """A court act of `when`, recorded by the broker at `recorded` (by default at once)."""
    record = copy.deepcopy(_SAMPLES[kind])
    if kind == "Shielded":
        record["performed_at"] = None
    record.update(
        event_id=f"00000000-0000-4000-8000-{next(_ids):012d}",
        entry_id=entry,
        occurred_at=at(when),
        debtor=copy.deepcopy(debtor),
        **fields,
    )
    return Recorded(parse_event(record), recorded or when, next(_positions), historical)


def warned(when: dt.datetime, entry: str = "E1", **kw: Any) -> Recorded:
    return court("RiskWarningIssued", when, entry, served_at=at(when), **kw)


def included(when: dt.datetime, entry: str = "E1", **fields: Any) -> Recorded:
    return court("Included", when, entry, **fields)


def requested(received: dt.datetime, entry: str = "E1") -> Recorded:
    return court("CorrectionRequested", received, entry, received_at=at(received))


def decided(when: dt.datetime, outcome: str = "REJECTED", entry: str = "E1", **kw: Any) -> Recorded:
    return court("CorrectionDecided", when, entry, outcome=outcome, **kw)


def shielded(when: dt.datetime, entry: str = "E1", **fields: Any) -> Recorded:
    fields.setdefault("reason", "CREDITOR_REQUEST")
    return court("Shielded", when, entry, **fields)


def revoked(when: dt.datetime, entry: str = "E1", **fields: Any) -> Recorded:
    fields.setdefault("reason", "RECONSIDERATION_UPHELD")
    return court("Revoked", when, entry, **fields)


def basic(entry: str = "E1", when: dt.datetime = INCLUDED_AT) -> list[Recorded]:
    """A warning served on Monday T0 and the inclusion of Tuesday 10:00 (or `when`)."""
    return [warned(T0, entry), included(when, entry)]


def answer(
    kind: str,
    to: Recorded,
    recorded: dt.datetime,
    agency: str = "bank",
    measures: tuple[str, ...] = ("LOAN_RESTRICTED",),
    **fields: Any,
) -> Recorded:
    """The agency's feedback to the court act `to`, recorded at `recorded`."""
    record = feedback_sample(
        kind,
        agency=agency,
        entry_id=to.event.entry_id,
        court_event_id=to.event.event_id,
        debtor_id=to.event.debtor.id_number,
        subject_id=to.event.debtor.id_number,
        measures=list(measures),
        occurred_at=at(recorded),
    )
    record.update(fields)
    return Recorded(parse_event(record), recorded, next(_positions))


def intercept(
    checked: dt.datetime,
    recorded: dt.datetime | None = None,
    subject: str = PERSON_ID,
    measure: str = "LOAN_RESTRICTED",
    entry: str = "E1",
    agency: str = "bank",
) -> Recorded:
    """A block made by the agency's checker at `checked`, forwarded to the hub at `recorded`."""
    record = feedback_sample(
        "InterceptionRecorded",
        agency=agency,
        entry_id=entry,
        entry_ids=[entry],
        debtor_id=subject,
        subject_id=subject,
        measure=measure,
        measures=[measure],
        occurred_at=at(checked),
    )
    return Recorded(parse_event(record), recorded or checked, next(_positions))


def found(court_records, feedback=(), as_of=LATER, deadlines=DEADLINES, agencies=()) -> set[tuple[str, str]]:
    return {(v.rule, v.entry_id) for v in judge(court_records, feedback, as_of, deadlines, agencies)}


def flagged(rule: str, court_records, feedback=(), **kw: Any) -> bool:
    return (rule, "E1") in found(court_records, feedback, **kw)


# -- courts -------------------------------------------------------------------------------------------


def test_a_compliant_history_has_no_violations():
    """Performed on Friday 3 April: the three days end on Monday 6 April, Qingming, so Tuesday is on time."""
    history = basic()
    inc = history[1]
    shield = shielded(on(4, 7, 15), reason="FULL_PERFORMANCE", performed_at=at(on(4, 3, 10)))
    assert DEADLINES.due(on(4, 3, 10), Period(3)) == end_of(4, 7)
    feedback = [
        answer("SanctionApplied", inc, inc.recorded_at + HOUR),
        answer("SanctionLifted", shield, shield.recorded_at + HOUR),
    ]
    assert found([*history, shield], feedback) == set()


def test_inclusion_without_an_earlier_warning():
    assert found([included(T0)]) == {("INCLUDED_WITHOUT_RISK_WARNING", "E1")}
    # A warning served after the inclusion, whatever the order of the records, also contradicts the entry.
    assert found([warned(T0 + DAY), included(T0)]) == {
        ("INCLUDED_WITHOUT_RISK_WARNING", "E1"),
        ("ORPHAN_EVENT", "E1"),
    }
    assert found([warned(T0), included(T0)]) == set(), "a warning served at the same instant counts"


@pytest.mark.parametrize(
    ("decision", "late"),
    [(on(3, 12, 23, 59), False), (end_of(3, 12), False), (end_of(3, 12) + SECOND, True), (on(3, 13, 9), True)],
)
def test_correction_review_within_three_days(decision, late):
    """Received Monday 9 March: Tuesday, Wednesday, Thursday; the review ends at 24:00 on Thursday 12 March."""
    received = on(3, 9, 10)
    assert DEADLINES.due(received, Period(3)) == end_of(3, 12)
    history = [*basic(), requested(received), decided(decision)]
    assert flagged("CORRECTION_REVIEW_OVERDUE", history) is late


def test_undecided_correction_is_overdue_only_once_the_deadline_has_passed():
    history = [*basic(), requested(on(3, 9, 10))]
    assert flagged("CORRECTION_REVIEW_OVERDUE", history, as_of=end_of(3, 12) + SECOND)
    assert found(history, as_of=end_of(3, 12)) == set()


def test_correction_received_on_wednesday_may_be_decided_on_monday_not_tuesday():
    """Wednesday 09:00 + 3 days: Thursday, Friday, Saturday; Saturday is a rest day, so Monday 24:00."""
    received = on(3, 4, 9)
    assert DEADLINES.due(received, DEADLINES.review) == end_of(3, 9)
    on_monday = [*basic(), requested(received), decided(on(3, 9, 16))]
    on_tuesday = [*basic(), requested(received), decided(on(3, 10, 9))]
    assert found(on_monday) == set()
    assert found(on_tuesday) == {("CORRECTION_REVIEW_OVERDUE", "E1")}


@pytest.mark.parametrize(("revocation", "late"), [(end_of(3, 13), False), (on(3, 14, 9), True)])
def test_upheld_correction_revoked_within_three_days(revocation, late):
    """Upheld Tuesday 10 March: the revocation is due by 24:00 on Friday 13 March."""
    history = [
        *basic(),
        requested(on(3, 9, 10)),
        decided(on(3, 10, 15), "UPHELD"),
        revoked(revocation, reason="CORRECTION_UPHELD"),
    ]
    assert flagged("CORRECTION_UPHELD_NOT_REVOKED", history) is late


def test_a_revocation_dated_on_time_but_published_late_is_not_on_time():
    """The debtor stayed barred until the hub learnt of the revocation on Monday 16 March, after the revocation
    period ended (Friday 24:00), although within the publication period (Saturday, carried to Monday)."""
    history = [
        *basic(),
        requested(on(3, 9, 10)),
        decided(on(3, 10, 15), "UPHELD"),
        revoked(on(3, 13, 10), reason="CORRECTION_UPHELD", recorded=on(3, 16, 9)),
    ]
    assert found(history) == {("CORRECTION_UPHELD_NOT_REVOKED", "E1")}


@pytest.mark.parametrize(("shielding", "late"), [(end_of(5, 6), False), (end_of(5, 6) + SECOND, True)])
def test_shielding_within_three_days_of_performance(shielding, late):
    """Performed Wednesday 29 April: the third day, 2 May, falls in the May Day holiday (1-5 May), so the
    period runs to 24:00 on Wednesday 6 May."""
    performed = on(4, 29, 10)
    assert DEADLINES.due(performed, Period(3)) == end_of(5, 6)
    history = basic()
    shield = shielded(shielding, reason="SETTLEMENT_PERFORMED", performed_at=at(performed))
    assert flagged("SHIELD_OVERDUE", [*history, shield]) is late


@pytest.mark.parametrize(("delay", "late"), [(dt.timedelta(0), False), (SECOND, True)])
def test_listing_period_expiry(delay, late):
    """Listed on 29 February 2024 for 24 months: the period ends on 28 February 2026 (no 29th), a Saturday
    that is a make-up working day of the Spring Festival, so it is not carried; three days' grace then
    end at 24:00 on Tuesday 3 March."""
    inc_at = on(2, 29, 10, year=2024)
    history = [warned(inc_at - DAY), included(inc_at, period_months=24)]
    assert DEADLINES.calendar.months_end(inc_at, 24) == end_of(2, 28)
    due = end_of(3, 3)
    shield = shielded(due + delay, reason="PERIOD_EXPIRED")
    assert flagged("PERIOD_EXPIRED_NOT_SHIELDED", [*history, shield]) is late
    assert flagged("PERIOD_EXPIRED_NOT_SHIELDED", history, as_of=due + SECOND), "still active: breach"
    assert found(history, as_of=due) == set()


def test_restricted_entry_needs_an_employer_notice():
    notice = {"unit": "某单位", "notified_at": at(T0 + 11 * DAY)}
    assert found([warned(T0), included(T0 + DAY, disclosure="RESTRICTED")]) == {
        ("RESTRICTED_WITHOUT_EMPLOYER_NOTICE", "E1")
    }
    assert found([warned(T0), included(T0 + DAY, disclosure="RESTRICTED", employer_notified=notice)]) == set()


def test_orphan_and_contradictory_events():
    assert found([shielded(T0, entry="X")]) == {("ORPHAN_EVENT", "X")}
    twice = [*basic(), included(on(3, 4))]
    assert found(twice) == {("ORPHAN_EVENT", "E1")}
    decided_alone = [*basic(), decided(on(3, 5))]
    assert found(decided_alone) == {("ORPHAN_EVENT", "E1")}
    shielded_twice = [*basic(), shielded(on(3, 20)), shielded(on(3, 23))]
    assert found(shielded_twice) == {("ORPHAN_EVENT", "E1")}


def test_a_shielded_entry_may_be_revoked_but_a_revoked_one_not_shielded():
    """A listing found wrongful after it was shielded is revoked (lawful); nothing follows a revocation."""
    assert found([*basic(), shielded(on(3, 20)), revoked(on(4, 1, 10))]) == set()
    assert found([*basic(), revoked(on(3, 20)), shielded(on(4, 1, 10))]) == {("ORPHAN_EVENT", "E1")}
    assert found([*basic(), revoked(on(3, 20)), revoked(on(4, 1, 10))]) == {("ORPHAN_EVENT", "E1")}


@pytest.mark.parametrize(("received", "late"), [(end_of(3, 23), False), (end_of(3, 23) + SECOND, True)])
def test_correction_request_window(received, late):
    """Included Thursday 12 March: ten days end on Sunday 22 March, carried to 24:00 on Monday 23 March."""
    inc_at = on(3, 12)
    assert DEADLINES.due(inc_at, Period(10)) == end_of(3, 23)
    history = [*basic(when=inc_at), requested(received), decided(received + DAY)]
    assert flagged("ORPHAN_EVENT", history) is late


def test_correction_window_runs_from_service_of_the_decision_when_known():
    """Included Monday 2 March, served Wednesday 4 March: a request on Friday 13 March is 11 days after the
    inclusion but 9 after service, within the window (which ends Monday 16 March, 14 March being Saturday).
    Without `served_at` (a v1 record) the window runs from the inclusion and ended at 24:00 on 12 March."""
    request = on(3, 13)
    assert DEADLINES.due(on(3, 4, 15), Period(10)) == end_of(3, 16)
    assert DEADLINES.due(T0, Period(10)) == end_of(3, 12)
    served = [warned(T0), included(T0, served_at=at(on(3, 4, 15))), requested(request), decided(on(3, 16))]
    assert served[1].event.served_at == on(3, 4, 15)
    assert found(served) == set()
    unserved = [warned(T0), included(T0, served_at=None), requested(request), decided(on(3, 16))]
    assert found(unserved) == {("ORPHAN_EVENT", "E1")}
    (violation,) = judge(unserved, [], LATER, DEADLINES)
    assert violation.due_at == end_of(3, 12) and "from inclusion" in violation.detail


def test_review_in_working_days_skips_the_weekend():
    """Received Friday 6 March 17:00. Three days end on Monday 9 March (the third day is a working day, so
    nothing is carried); three working days are Monday, Tuesday and Wednesday 11 March."""
    received = on(3, 6, 17)
    working = with_deadlines(review=Period(3, "working days"))
    assert DEADLINES.due(received, DEADLINES.review) == end_of(3, 9)
    assert working.due(received, working.review) == end_of(3, 11)
    on_wednesday = [*basic(), requested(received), decided(on(3, 11, 16))]
    assert found(on_wednesday) == {("CORRECTION_REVIEW_OVERDUE", "E1")}
    assert found(on_wednesday, deadlines=working) == set()
    on_thursday = [*basic(), requested(received), decided(on(3, 12, 9))]
    assert found(on_thursday, deadlines=working) == {("CORRECTION_REVIEW_OVERDUE", "E1")}


def test_a_period_ending_on_national_day_is_carried_past_the_holiday():
    """Received Monday 28 September: the third day is 1 October; 1-7 October are holidays (4 October a
    Sunday), so the review runs to 24:00 on Thursday 8 October."""
    received = on(9, 28, 10)
    assert DEADLINES.calendar.last_day(received, Period(3)) == dt.date(2026, 10, 8)
    history = [warned(on(9, 21)), included(on(9, 24, 10))]
    assert found([*history, requested(received), decided(on(10, 8, 17))]) == set()
    assert found([*history, requested(received), decided(on(10, 9, 9))]) == {("CORRECTION_REVIEW_OVERDUE", "E1")}


def test_a_make_up_saturday_is_a_working_day():
    """Saturday 10 October 2026 is worked in exchange for the National Day holiday: three working days after
    Thursday 8 October are Friday 9, Saturday 10 and Monday 12 October. Declared a rest day, Tuesday 13."""
    working = with_deadlines(review=Period(3, "working days"))
    received = on(10, 8, 10)
    assert working.due(received, working.review) == end_of(10, 12)
    history = [warned(on(9, 28)), included(on(9, 29, 10))]
    assert found([*history, requested(received), decided(on(10, 12, 17))], deadlines=working) == set()
    on_tuesday = [*history, requested(received), decided(on(10, 13, 9))]
    assert found(on_tuesday, deadlines=working) == {("CORRECTION_REVIEW_OVERDUE", "E1")}
    without = with_deadlines(
        review=Period(3, "working days"), calendar=LegalCalendar.of(holidays=[dt.date(2026, 10, 10)])
    )
    assert found(on_tuesday, deadlines=without) == set()


# -- publication --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded", "late"), [(on(3, 9, 23, 59), False), (end_of(3, 9), False), (end_of(3, 9) + SECOND, True)]
)
def test_a_court_act_recorded_after_the_publication_period_is_late(recorded, late):
    """Included Friday 6 March: one day ends on Saturday, a rest day, so publication is due by 24:00 on Monday."""
    history = [warned(on(3, 5)), included(on(3, 6, 10), recorded=recorded)]
    assert DEADLINES.due(on(3, 6, 10), DEADLINES.publication) == end_of(3, 9)
    violations = judge(history, [], LATER, DEADLINES)
    assert bool(violations) is late
    if late:
        (violation,) = violations
        assert (violation.rule, violation.party, violation.due_at) == ("PUBLICATION_LATE", "court:J0105", end_of(3, 9))


def test_publication_is_judged_once_its_deadline_has_passed():
    history = [warned(on(3, 5)), included(on(3, 6, 10), recorded=on(3, 12))]
    assert found(history, as_of=end_of(3, 9)) == set(), "not yet due"
    assert found(history, as_of=end_of(3, 9) + SECOND) == {("PUBLICATION_LATE", "E1")}, "due and still unrecorded"


def test_historical_imports_are_exempt_from_the_publication_period():
    """Records loaded as history were decided before the hub existed: their record time says nothing."""
    history = [
        warned(on(3, 5), recorded=on(1, 4, year=2027), historical=True),
        included(on(3, 6, 10), recorded=on(1, 4, year=2027), historical=True),
    ]
    assert found(history) == set()


def test_a_shielding_published_after_its_deadline_is_overdue():
    """Performed Monday 16 March: the shielding is due by 24:00 on Thursday 19 March. Dated Tuesday but
    recorded on Friday, the debtor stayed barred: SHIELD_OVERDUE, and PUBLICATION_LATE (due Wednesday)."""
    performed = on(3, 16, 10)
    assert DEADLINES.due(performed, DEADLINES.shield) == end_of(3, 19)
    history = basic()
    late_record = shielded(on(3, 17, 10), reason="FULL_PERFORMANCE", performed_at=at(performed), recorded=on(3, 20))
    assert found([*history, late_record]) == {("SHIELD_OVERDUE", "E1"), ("PUBLICATION_LATE", "E1")}
    history = basic()
    only_publication = shielded(
        on(3, 16, 11), reason="FULL_PERFORMANCE", performed_at=at(performed), recorded=on(3, 19, 9)
    )
    assert found([*history, only_publication]) == {("PUBLICATION_LATE", "E1")}, "recorded late but in time"


def test_a_historical_shielding_is_judged_by_its_date_alone():
    """historical=True exempts the record time, not the act: a shielding dated late is still overdue."""
    performed = on(3, 16, 10)
    history = basic()
    dated_on_time = shielded(
        on(3, 17, 10), reason="FULL_PERFORMANCE", performed_at=at(performed), recorded=on(3, 20), historical=True
    )
    assert found([*history, dated_on_time]) == set()
    history = basic()
    dated_late = shielded(
        on(3, 20, 9), reason="FULL_PERFORMANCE", performed_at=at(performed), recorded=on(3, 20, 9), historical=True
    )
    assert found([*history, dated_late]) == {("SHIELD_OVERDUE", "E1")}


# -- agencies -----------------------------------------------------------------------------------------

JOINED_IN_JANUARY = with_deadlines(agency_since={"bank": on(1, 5)})  # the bank's start, for the hour tests


@pytest.mark.parametrize(("hours", "late"), [(24, False), (24.01, True)])
def test_sanction_applied_within_24_hours_of_the_court_record(hours, late):
    """Agency hours run from the broker's record (Tuesday 09:00), not from the court's act. The bank joined
    before: were this reply its first feedback ever, its deadlines would only start with it."""
    w, inc = warned(T0), included(T0, recorded=T0 + DAY)
    reply = answer("SanctionApplied", inc, inc.recorded_at + dt.timedelta(hours=hours))
    assert found([w, inc], [reply], deadlines=JOINED_IN_JANUARY) == (
        {("SANCTION_NOT_APPLIED", "E1")} if late else set()
    )
    assert found([w, inc], [reply]) == set(), "an agency's first feedback starts its deadlines"


def test_no_answer_at_all_is_a_breach_once_the_deadline_passed():
    w, inc = warned(T0), included(T0)
    assert found([w, inc], [], agencies=["bank"]) == {("SANCTION_NOT_APPLIED", "E1")}
    assert found([w, inc], [], as_of=T0 + DAY, agencies=["bank"]) == set()


@pytest.mark.parametrize(("hours", "late"), [(24, False), (25, True)])
def test_lift_within_24_hours_of_the_shielding_record(hours, late):
    w, inc = warned(T0), included(T0)
    shield = shielded(on(4, 1), recorded=on(4, 1, 20))
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer("SanctionLifted", shield, shield.recorded_at + dt.timedelta(hours=hours)),
    ]
    assert found([w, inc, shield], feedback) == ({("SANCTION_NOT_LIFTED", "E1")} if late else set())


def test_retention_answers_a_shielding_but_must_end_on_time():
    w, inc = warned(T0), included(T0)
    shield = shielded(on(4, 1))
    until = on(5, 31)
    kept = answer("SanctionRetained", shield, shield.recorded_at + DAY, legal_basis="法", retain_until=at(until))
    base = [answer("SanctionApplied", inc, T0 + HOUR), kept]
    assert found([w, inc, shield], base, as_of=until + DAY) == set()
    assert found([w, inc, shield], base) == {("RETENTION_EXPIRED_NOT_LIFTED", "E1")}
    ended = answer("SanctionLifted", shield, until + DAY)
    assert found([w, inc, shield], [*base, ended]) == set()


@pytest.mark.parametrize(("hours", "late"), [(24, False), (30, True)])
def test_failure_must_be_followed_by_application(hours, late):
    w, inc = warned(T0), included(T0)
    failed = answer("SanctionFailed", inc, T0 + HOUR, reason="system down")
    applied = answer("SanctionApplied", inc, T0 + dt.timedelta(hours=hours))
    assert (("SANCTION_FAILED", "E1") in found([w, inc], [failed, applied])) is late
    assert ("SANCTION_FAILED", "E1") in found([w, inc], [failed])


def test_interception_without_an_active_entry_is_wrongful():
    w, inc = warned(T0), included(T0)
    shield = shielded(on(4, 1))
    feedback = [answer("SanctionApplied", inc, T0 + HOUR), answer("SanctionLifted", shield, shield.recorded_at)]
    history = [w, inc, shield]
    assert found(history, [*feedback, intercept(on(3, 12))]) == set()
    assert found(history, [*feedback, intercept(on(4, 2))]) == {("WRONGFUL_SANCTION", "E1")}


def test_applying_to_someone_who_is_neither_debtor_nor_representative_is_wrongful():
    w, inc = warned(T0), included(T0)
    wrong = answer("SanctionApplied", inc, T0 + HOUR, subject_id=REP_ID)
    assert found([w, inc], [wrong]) == {("WRONGFUL_SANCTION", "E1")}


def test_republished_events_are_judged_once():
    history = basic()
    again = Recorded(history[1].event, history[1].recorded_at + DAY, next(_positions))
    assert found([*history, again], [answer("SanctionApplied", history[1], INCLUDED_AT + HOUR)]) == set()


# -- revocation after a shielding and retention ---------------------------------------------------------

SHIELD_AT = on(4, 1, 10)  # Wednesday 1 April
REVOKE_AT = on(6, 1, 10)  # Monday 1 June


def retained_then_revoked() -> tuple[list[Recorded], list[Recorded], Recorded]:
    """Included, applied; shielded, answered by a retention for a year; then revoked. Returns the court
    record, the bank's feedback so far, and the Revoked."""
    w, inc = warned(T0), included(T0)
    shield, revocation = shielded(SHIELD_AT), revoked(REVOKE_AT)
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer(
            "SanctionRetained",
            shield,
            SHIELD_AT + HOUR,
            legal_basis="《商业银行法》",
            retain_until=at(SHIELD_AT + 365 * DAY),
        ),
    ]
    return [w, inc, shield, revocation], feedback, revocation


def test_a_revocation_ends_a_retention_and_must_be_answered_by_a_lift():
    history, feedback, revocation = retained_then_revoked()
    due = REVOKE_AT + DEADLINES.agency
    assert found(history, feedback, as_of=due) == set()
    assert found(history, feedback, as_of=due + SECOND) == {("SANCTION_NOT_LIFTED", "E1")}
    (violation,) = judge(history, feedback, due + SECOND, DEADLINES)
    assert violation.party == "agency:bank" and violation.due_at == due and "revocation ends" in violation.detail
    lift = answer("SanctionLifted", revocation, due)
    assert found(history, [*feedback, lift]) == set()


def test_the_lift_answering_a_revocation_ends_the_retention_too():
    """Without it the retention also runs out unanswered; with it neither rule is breached."""
    history, feedback, revocation = retained_then_revoked()
    assert found(history, feedback) == {("SANCTION_NOT_LIFTED", "E1"), ("RETENTION_EXPIRED_NOT_LIFTED", "E1")}
    assert found(history, [*feedback, answer("SanctionLifted", revocation, REVOKE_AT + HOUR)]) == set()


def test_a_retention_is_not_an_answer_to_a_revocation():
    history, feedback, revocation = retained_then_revoked()
    kept = answer("SanctionRetained", revocation, REVOKE_AT + HOUR, legal_basis="法", retain_until=at(on(12, 1)))
    assert found(history, [*feedback, kept], as_of=REVOKE_AT + 2 * DAY) == {
        ("WRONGFUL_SANCTION", "E1"),
        ("SANCTION_NOT_LIFTED", "E1"),
    }


def test_a_retention_after_a_plain_revocation_is_wrongful():
    w, inc, revocation = warned(T0), included(T0), revoked(REVOKE_AT)
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer("SanctionRetained", revocation, REVOKE_AT + HOUR, legal_basis="法", retain_until=at(on(12, 1))),
    ]
    assert found([w, inc, revocation], feedback, as_of=REVOKE_AT + 2 * DAY) == {
        ("WRONGFUL_SANCTION", "E1"),
        ("SANCTION_NOT_LIFTED", "E1"),
    }


def test_a_revocation_after_a_lifted_shielding_needs_no_answer():
    w, inc, shield, revocation = warned(T0), included(T0), shielded(SHIELD_AT), revoked(REVOKE_AT)
    feedback = [answer("SanctionApplied", inc, T0 + HOUR), answer("SanctionLifted", shield, SHIELD_AT + HOUR)]
    assert found([w, inc, shield, revocation], feedback) == set()
    anyway = answer("SanctionLifted", revocation, REVOKE_AT + HOUR)
    assert found([w, inc, shield, revocation], [*feedback, anyway]) == set(), "answering anyway is harmless"


@pytest.mark.parametrize(("until", "wrong"), [(SHIELD_AT, True), (SHIELD_AT + SECOND, False)])
def test_a_retention_must_end_after_the_court_act(until, wrong):
    w, inc, shield = warned(T0), included(T0), shielded(SHIELD_AT)
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer("SanctionRetained", shield, SHIELD_AT + HOUR, legal_basis="法", retain_until=at(until)),
        answer("SanctionLifted", shield, SHIELD_AT + 2 * HOUR),
    ]
    assert found([w, inc, shield], feedback) == ({("WRONGFUL_SANCTION", "E1")} if wrong else set())


@pytest.mark.parametrize(("extra", "wrong"), [(dt.timedelta(0), False), (SECOND, True)])
def test_a_retention_may_not_exceed_the_maximum(extra, wrong):
    bounded = with_deadlines(max_retention_days=30)
    until = SHIELD_AT + 30 * DAY + extra
    w, inc, shield = warned(T0), included(T0), shielded(SHIELD_AT)
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer("SanctionRetained", shield, SHIELD_AT + HOUR, legal_basis="法", retain_until=at(until)),
        answer("SanctionLifted", shield, until),
    ]
    assert found([w, inc, shield], feedback, deadlines=bounded) == ({("WRONGFUL_SANCTION", "E1")} if wrong else set())
    assert found([w, inc, shield], feedback) == set(), "within the default bound of five years"


# -- agencies judged from when they joined ------------------------------------------------------------

JOINED = on(3, 2, 9)  # the bank's first feedback, years after the old inclusions


def old_inclusions() -> list[Recorded]:
    """Two entries included (and recorded) in 2023, still active when the bank joins in 2026."""
    return [
        warned(on(3, 1, year=2023), "E1"),
        included(on(3, 6, 10, year=2023), "E1"),
        warned(on(6, 1, year=2023), "E2"),
        included(on(6, 5, 10, year=2023), "E2"),
    ]


def test_an_agency_that_joins_late_is_judged_from_its_first_feedback():
    history = old_inclusions()
    on_time = [answer("SanctionApplied", history[1], JOINED), answer("SanctionApplied", history[3], JOINED + DAY)]
    assert found(history, on_time) == set()
    late = [answer("SanctionApplied", history[1], JOINED), answer("SanctionApplied", history[3], JOINED + 25 * HOUR)]
    assert found(history, late) == {("SANCTION_NOT_APPLIED", "E2")}


def test_an_inclusion_recorded_after_the_agency_joined_is_judged_from_its_record():
    history = [*old_inclusions(), warned(on(3, 3), "E3"), included(on(3, 5, 10), "E3")]
    feedback = [
        answer("SanctionApplied", history[1], JOINED),
        answer("SanctionApplied", history[3], JOINED),
        answer("SanctionApplied", history[5], on(3, 6, 10) + SECOND),
    ]
    assert found(history, feedback) == {("SANCTION_NOT_APPLIED", "E3")}


def test_agency_since_sets_when_an_agency_joined():
    """With agency_since the deadlines run from that setting, not from the first feedback."""
    history = old_inclusions()
    feedback = [
        answer("SanctionApplied", history[1], JOINED + DAY),
        answer("SanctionApplied", history[3], JOINED + 25 * HOUR),
    ]
    assert found(history, feedback) == set(), "25 h after joining, but 1 h after the first feedback"
    since = with_deadlines(agency_since={"bank": JOINED})
    assert found(history, feedback, deadlines=since) == {("SANCTION_NOT_APPLIED", "E2")}
    other = with_deadlines(agency_since={"tax": JOINED})
    assert found(history, feedback, deadlines=other) == set(), "another agency's start changes nothing here"


def test_an_agency_with_no_feedback_at_all_is_judged_from_the_record_time():
    history = old_inclusions()
    due = history[1].recorded_at + DEADLINES.agency
    assert found(history, [], as_of=due, agencies=["bank"]) == set()
    assert ("SANCTION_NOT_APPLIED", "E1") in found(history, [], as_of=due + SECOND, agencies=["bank"])
    assert found(history, [], as_of=JOINED, agencies=["bank"]) == {
        ("SANCTION_NOT_APPLIED", "E1"),
        ("SANCTION_NOT_APPLIED", "E2"),
    }
    since = with_deadlines(agency_since={"bank": JOINED})
    assert found(history, [], as_of=JOINED + DAY, deadlines=since, agencies=["bank"]) == set()


# -- interceptions ------------------------------------------------------------------------------------


def active_then_shielded():
    """Included Monday T0, applied by the bank on LOAN_RESTRICTED; shielded and lifted on 1 April."""
    w, inc, shield = warned(T0), included(T0), shielded(SHIELD_AT)
    feedback = [answer("SanctionApplied", inc, T0 + HOUR), answer("SanctionLifted", shield, SHIELD_AT + HOUR)]
    return [w, inc, shield], feedback


def wrongful(court_records, feedback, deadlines=DEADLINES) -> bool:
    return ("WRONGFUL_SANCTION", "E1") in found(court_records, feedback, deadlines=deadlines)


def test_a_block_is_judged_when_the_check_was_made_not_when_it_was_forwarded():
    history, feedback = active_then_shielded()
    forwarded_late = intercept(SHIELD_AT - HOUR, recorded=SHIELD_AT + 2 * HOUR)
    assert not wrongful(history, [*feedback, forwarded_late])
    assert wrongful(history, [*feedback, intercept(SHIELD_AT + HOUR, recorded=SHIELD_AT + HOUR)])


def test_a_block_after_the_shielding_is_wrongful_beyond_the_check_tolerance():
    history, feedback = active_then_shielded()
    tolerance = DEADLINES.check_tolerance
    assert not wrongful(history, [*feedback, intercept(SHIELD_AT + tolerance / 2)]), "index not yet refreshed"
    assert wrongful(history, [*feedback, intercept(SHIELD_AT + tolerance + SECOND)])
    slow_index = with_deadlines(check_tolerance=dt.timedelta(hours=1))
    assert not wrongful(history, [*feedback, intercept(SHIELD_AT + 30 * dt.timedelta(minutes=1))], slow_index)
    assert wrongful(history, [*feedback, intercept(SHIELD_AT + 61 * dt.timedelta(minutes=1))], slow_index)


def test_a_block_before_the_inclusion_was_recorded_is_wrongful():
    history, feedback = active_then_shielded()
    assert wrongful(history, [*feedback, intercept(T0 - HOUR)])


def test_a_block_of_a_subject_the_entry_does_not_restrict_is_wrongful():
    """The bank restricts the organisation itself, not its legal representative."""
    w, inc = warned(T0, debtor=ORG), included(T0, debtor=ORG)
    feedback = [answer("SanctionApplied", inc, T0 + HOUR)]
    assert inc.event.debtor.legal_representative.id_number == REP_ID
    assert not wrongful([w, inc], [*feedback, intercept(on(3, 10), subject=ORG_ID)])
    assert wrongful([w, inc], [*feedback, intercept(on(3, 10), subject=REP_ID)])


def test_a_block_of_a_measure_the_agency_never_applied_is_wrongful():
    history, feedback = active_then_shielded()
    assert not wrongful(history, [*feedback, intercept(on(3, 10), measure="LOAN_RESTRICTED")])
    assert wrongful(history, [*feedback, intercept(on(3, 10), measure="CREDIT_CARD_RESTRICTED")])
    assert wrongful(history, [*feedback, intercept(on(3, 10), agency="tax")]), "another agency applied nothing"


def test_a_block_during_a_retention_is_lawful_after_the_revocation_it_is_not():
    history, feedback, revocation = retained_then_revoked()
    feedback.append(answer("SanctionLifted", revocation, REVOKE_AT + HOUR))
    assert not wrongful(history, [*feedback, intercept(SHIELD_AT + 30 * DAY)]), "kept by the retention"
    assert not wrongful(history, [*feedback, intercept(REVOKE_AT - HOUR)])
    assert wrongful(history, [*feedback, intercept(REVOKE_AT + HOUR)])


def test_a_block_after_a_retention_ran_out_is_wrongful():
    w, inc, shield = warned(T0), included(T0), shielded(SHIELD_AT)
    until = SHIELD_AT + 30 * DAY
    feedback = [
        answer("SanctionApplied", inc, T0 + HOUR),
        answer("SanctionRetained", shield, SHIELD_AT + HOUR, legal_basis="法", retain_until=at(until)),
        answer("SanctionLifted", shield, until),
    ]
    assert not wrongful([w, inc, shield], [*feedback, intercept(until - HOUR)])
    assert wrongful([w, inc, shield], [*feedback, intercept(until + HOUR)])


# -- properties ---------------------------------------------------------------------------------------

instants = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 12, 31), timezones=st.just(CST))
periods = st.builds(Period, st.integers(0, 10), st.sampled_from(["days", "working days"]))
# Offsets from a deadline: the instants either side of it, and anything within a fortnight.
offsets = st.one_of(
    st.sampled_from([dt.timedelta(0), -dt.timedelta(microseconds=1), dt.timedelta(microseconds=1), SECOND, -SECOND]),
    st.timedeltas(min_value=-14 * DAY, max_value=14 * DAY),
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(received=instants, review=periods, offset=offsets)
def test_review_overdue_iff_decided_after_the_legal_deadline(received, review, offset):
    deadlines = with_deadlines(review=review)
    due = deadlines.due(received, review)
    decision = max(received, due + offset)
    history = [
        warned(received - 2 * DAY),
        included(received - DAY),
        requested(received),
        decided(decision),
    ]
    overdue = flagged("CORRECTION_REVIEW_OVERDUE", history, as_of=decision + 60 * DAY, deadlines=deadlines)
    assert overdue is (decision > due)


@PROPERTY
@given(occurred=instants, publication=periods, offset=offsets, historical=st.booleans())
def test_publication_late_iff_recorded_after_the_legal_deadline(occurred, publication, offset, historical):
    deadlines = with_deadlines(publication=publication)
    due = deadlines.due(occurred, publication)
    recorded = max(occurred, due + offset)
    history = [included(occurred, recorded=recorded, historical=historical)]
    late = flagged("PUBLICATION_LATE", history, as_of=recorded + 60 * DAY, deadlines=deadlines)
    assert late is (recorded > due and not historical)


@PROPERTY
@given(
    recorded=instants,
    since_offset=st.one_of(st.none(), st.timedeltas(min_value=-30 * DAY, max_value=30 * DAY)),
    other_offset=st.timedeltas(min_value=-30 * DAY, max_value=30 * DAY),
    offset=st.one_of(st.sampled_from([dt.timedelta(0), SECOND, -SECOND]), st.timedeltas(-2 * DAY, 2 * DAY)),
)
def test_sanction_not_applied_iff_answered_later_than_the_agency_could_know_plus_its_hours(
    recorded, since_offset, other_offset, offset
):
    """The agency could know at the later of the record and its start: `agency_since`, or else its first
    feedback (here an answer about another entry, at a random time, or the reply itself)."""
    since = None if since_offset is None else recorded + since_offset
    deadlines = with_deadlines(agency_since={"bank": since} if since else {})
    other_w, other_inc = warned(on(12, 1, year=2024), "E0"), included(on(12, 2, year=2024), "E0")
    other = answer("SanctionApplied", other_inc, recorded + other_offset)
    w, inc = warned(recorded - DAY, recorded=recorded), included(recorded, recorded=recorded)
    start = since or other.recorded_at
    due = max(recorded, start) + deadlines.agency
    reply_at = max(recorded, due + offset)
    if since is None and reply_at < other.recorded_at:
        due = max(recorded, reply_at) + deadlines.agency  # the reply is the first feedback
    reply = answer("SanctionApplied", inc, reply_at)
    history = [other_w, other_inc, w, inc]
    late = flagged("SANCTION_NOT_APPLIED", history, [other, reply], as_of=reply_at + DAY, deadlines=deadlines)
    assert late is (reply_at > due)


def _random_history(rng: random.Random) -> tuple[list[Recorded], list[Recorded]]:
    """A few entries, most warned and included, then random court acts (orphans and contradictions included),
    with random publication delays and history flags, and random feedback from two agencies."""
    court_records: list[Recorded] = []
    start = on(1, 5)
    for number in range(rng.randint(1, 4)):
        entry = f"E{number}"
        moment = start + dt.timedelta(hours=rng.randint(0, 2000))
        usual = ["RiskWarningIssued", "Included"] if rng.random() < 0.8 else []
        for kind in usual + [rng.choice(COURT_TYPES) for _ in range(rng.randint(1, 5))]:
            moment += dt.timedelta(minutes=rng.randint(0, 20_000))
            fields: dict[str, Any] = {}
            if kind == "RiskWarningIssued":
                fields["served_at"] = at(moment)
            elif kind == "Included":
                fields["period_months"] = rng.choice([None, 24])
                if rng.random() < 0.5:
                    fields["served_at"] = at(moment + dt.timedelta(hours=rng.randint(0, 100)))
            elif kind == "CorrectionRequested":
                fields["received_at"] = at(moment)
            elif kind == "CorrectionDecided":
                fields["outcome"] = rng.choice(["UPHELD", "REJECTED"])
            elif kind == "Shielded":
                fields["reason"] = "FULL_PERFORMANCE"
                fields["performed_at"] = at(moment - dt.timedelta(hours=rng.randint(0, 200)))
            else:
                fields["reason"] = "WRONGFUL_INCLUSION"
            delay = dt.timedelta(minutes=rng.choice([0, 0, 30, 2000, 9000]))
            court_records.append(
                court(kind, moment, entry, recorded=moment + delay, historical=rng.random() < 0.2, **fields)
            )
    feedback: list[Recorded] = []
    for _ in range(rng.randint(0, 12)):
        to = rng.choice(court_records)
        agency = rng.choice(["bank", "tax"])
        replied = to.recorded_at + dt.timedelta(minutes=rng.randint(0, 3000))
        kind = rng.choice(["SanctionApplied", "SanctionLifted", "SanctionRetained", "SanctionFailed", "Block"])
        if kind == "Block":
            feedback.append(intercept(replied, entry=to.event.entry_id, agency=agency))
        elif kind == "SanctionRetained":
            until = to.event.occurred_at + dt.timedelta(days=rng.randint(-5, 400))
            feedback.append(answer(kind, to, replied, agency, legal_basis="法", retain_until=at(until)))
        elif kind == "SanctionFailed":
            feedback.append(answer(kind, to, replied, agency, reason="down"))
        else:
            feedback.append(answer(kind, to, replied, agency))
    return court_records, feedback


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), as_of_days=st.integers(0, 500))
def test_judging_does_not_depend_on_the_order_records_are_given_in(rng, as_of_days):
    """Positions stay with the records (they are the topic's order); only the lists are shuffled."""
    court_records, feedback = _random_history(rng)
    as_of = on(1, 5) + as_of_days * DAY
    expected: list[Violation] = judge(court_records, feedback, as_of, DEADLINES, ["bank", "tax"])
    rng.shuffle(court_records)
    rng.shuffle(feedback)
    assert judge(court_records, feedback, as_of, DEADLINES, ["tax", "bank"]) == expected
