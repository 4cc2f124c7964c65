"""Each compliance rule: a case that breaches it, and one exactly on its deadline that does not."""

import datetime as dt
import itertools

import pytest

from hub.domain.calendar import DayCounter
from hub.domain.events import parse_event
from hub.domain.history import Recorded
from hub.domain.rules import Deadlines, judge
from tests.support import PERSON_ID, court_sample, feedback_sample

CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST)  # a Monday
DAY = dt.timedelta(days=1)
LATER = T0 + 400 * DAY
_ids = itertools.count(1)
_positions = itertools.count(1)


def at(moment):
    return moment.isoformat()


def court(kind, when, entry="E1", recorded=None, **fields):
    record = court_sample(kind)
    if kind == "Shielded":
        record["performed_at"] = None
    record.update(event_id=f"00000000-0000-4000-8000-{next(_ids):012d}", entry_id=entry, occurred_at=at(when), **fields)
    if record["debtor"]["kind"] == "ORG":
        record["debtor"] = {"kind": "PERSON", "id_number": PERSON_ID, "name": "张三"}
    return Recorded(parse_event(record), recorded or when, next(_positions))


def warned(when, entry="E1"):
    return court("RiskWarningIssued", when, entry, served_at=at(when))


def included(when, entry="E1", **fields):
    return court("Included", when, entry, **fields)


def answer(kind, to, recorded, agency="bank", entry="E1", **fields):
    record = feedback_sample(
        kind,
        agency=agency,
        entry_id=entry,
        court_event_id=to.event.event_id,
        measures=["LOAN_RESTRICTED"],
        occurred_at=at(recorded),
        **fields,
    )
    return Recorded(parse_event(record), recorded, next(_positions))


def found(court_records, feedback=(), as_of=LATER, deadlines=None, agencies=()):
    return {(v.rule, v.entry_id) for v in judge(court_records, feedback, as_of, deadlines, agencies)}


def basic(entry="E1"):
    return [warned(T0, entry), included(T0 + 10 * DAY, entry)]


def test_a_compliant_history_has_no_violations():
    history = basic()
    inc = history[1]
    shield = court("Shielded", T0 + 40 * DAY, reason="FULL_PERFORMANCE", performed_at=at(T0 + 39 * DAY))
    feedback = [
        answer("SanctionApplied", inc, inc.recorded_at + DAY),
        answer("SanctionLifted", shield, shield.recorded_at),
    ]
    assert found([*history, shield], feedback) == set()


def test_inclusion_without_an_earlier_warning():
    assert found([included(T0)]) == {("INCLUDED_WITHOUT_RISK_WARNING", "E1")}
    assert found([warned(T0 + DAY), included(T0)]) == {("INCLUDED_WITHOUT_RISK_WARNING", "E1")}
    assert found([warned(T0), included(T0)]) == set(), "a warning served at the same instant counts"


@pytest.mark.parametrize(("days", "late"), [(3, False), (3.001, True)])
def test_correction_review_within_three_days(days, late):
    received = T0 + 12 * DAY
    history = [
        *basic(),
        court("CorrectionRequested", received, received_at=at(received)),
        court("CorrectionDecided", received + dt.timedelta(days=days), outcome="REJECTED"),
    ]
    assert (("CORRECTION_REVIEW_OVERDUE", "E1") in found(history)) is late


def test_undecided_correction_is_overdue_only_once_the_deadline_has_passed():
    received = T0 + 12 * DAY
    history = [*basic(), court("CorrectionRequested", received, received_at=at(received))]
    assert ("CORRECTION_REVIEW_OVERDUE", "E1") in found(history, as_of=received + 3 * DAY + dt.timedelta(seconds=1))
    assert found(history, as_of=received + 3 * DAY) == set()


@pytest.mark.parametrize(("days", "late"), [(3, False), (4, True)])
def test_upheld_correction_revoked_within_three_days(days, late):
    received, decided = T0 + 12 * DAY, T0 + 13 * DAY
    history = [
        *basic(),
        court("CorrectionRequested", received, received_at=at(received)),
        court("CorrectionDecided", decided, outcome="UPHELD"),
        court("Revoked", decided + days * DAY, reason="CORRECTION_UPHELD"),
    ]
    assert (("CORRECTION_UPHELD_NOT_REVOKED", "E1") in found(history)) is late


@pytest.mark.parametrize(("days", "late"), [(3, False), (3.5, True)])
def test_shielding_within_three_days_of_performance(days, late):
    performed = T0 + 50 * DAY
    history = basic()
    shield = court(
        "Shielded", performed + dt.timedelta(days=days), reason="SETTLEMENT_PERFORMED", performed_at=at(performed)
    )
    assert (("SHIELD_OVERDUE", "E1") in found([*history, shield])) is late


@pytest.mark.parametrize(("days", "late"), [(3, False), (3.01, True)])
def test_listing_period_expiry(days, late):
    inc_at = dt.datetime(2024, 1, 31, 10, tzinfo=CST)
    history = [warned(inc_at - DAY), included(inc_at, period_months=24)]
    expiry = dt.datetime(2026, 1, 31, 10, tzinfo=CST)
    shield = court("Shielded", expiry + dt.timedelta(days=days), reason="PERIOD_EXPIRED")
    assert (("PERIOD_EXPIRED_NOT_SHIELDED", "E1") in found([*history, shield])) is late
    assert ("PERIOD_EXPIRED_NOT_SHIELDED", "E1") in found(history, as_of=expiry + 4 * DAY), "still active: breach"
    assert found(history, as_of=expiry + 3 * DAY) == set()


def test_restricted_entry_needs_an_employer_notice():
    notice = {"unit": "某单位", "notified_at": at(T0 + 11 * DAY)}
    assert found([warned(T0), included(T0 + DAY, disclosure="RESTRICTED")]) == {
        ("RESTRICTED_WITHOUT_EMPLOYER_NOTICE", "E1")
    }
    assert found([warned(T0), included(T0 + DAY, disclosure="RESTRICTED", employer_notified=notice)]) == set()


def test_orphan_and_contradictory_events():
    assert found([court("Shielded", T0, entry="X", reason="CREDITOR_REQUEST")]) == {("ORPHAN_EVENT", "X")}
    twice = [*basic(), included(T0 + 11 * DAY)]
    assert found(twice) == {("ORPHAN_EVENT", "E1")}
    decided_alone = [*basic(), court("CorrectionDecided", T0 + 12 * DAY, outcome="REJECTED")]
    assert found(decided_alone) == {("ORPHAN_EVENT", "E1")}
    shielded_twice = [*basic(), *(court("Shielded", T0 + d * DAY, reason="CREDITOR_REQUEST") for d in (20, 21))]
    assert found(shielded_twice) == {("ORPHAN_EVENT", "E1")}
    revoked_after_shield = [
        *basic(),
        court("Shielded", T0 + 20 * DAY, reason="CREDITOR_REQUEST"),
        court("Revoked", T0 + 30 * DAY, reason="RECONSIDERATION_UPHELD"),
    ]
    assert found(revoked_after_shield) == set()


@pytest.mark.parametrize(("days", "late"), [(10, False), (11, True)])
def test_correction_request_window(days, late):
    received = T0 + (10 + days) * DAY
    history = [
        *basic(),
        court("CorrectionRequested", received, received_at=at(received)),
        court("CorrectionDecided", received + DAY, outcome="REJECTED"),
    ]
    assert (("ORPHAN_EVENT", "E1") in found(history)) is late


def test_working_days_skip_weekends():
    received = dt.datetime(2026, 3, 6, 17, tzinfo=CST)  # a Friday
    history = [
        *basic(),
        court("CorrectionRequested", received, received_at=at(received)),
        court("CorrectionDecided", received + 5 * DAY, outcome="REJECTED"),
    ]
    assert ("CORRECTION_REVIEW_OVERDUE", "E1") in found(history)
    assert found(history, deadlines=Deadlines(days=DayCounter.working())) == set()


# -- agencies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("hours", "late"), [(24, False), (24.01, True)])
def test_sanction_applied_within_24_hours_of_the_court_record(hours, late):
    w, inc = warned(T0), included(T0, recorded=T0 + 2 * DAY)
    reply = answer("SanctionApplied", inc, inc.recorded_at + dt.timedelta(hours=hours))
    assert (("SANCTION_NOT_APPLIED", "E1") in found([w, inc], [reply])) is late


def test_no_answer_at_all_is_a_breach_once_the_deadline_passed():
    w, inc = warned(T0), included(T0)
    assert found([w, inc], [], agencies=["bank"]) == {("SANCTION_NOT_APPLIED", "E1")}
    assert found([w, inc], [], as_of=T0 + DAY, agencies=["bank"]) == set()


@pytest.mark.parametrize(("hours", "late"), [(24, False), (25, True)])
def test_lift_within_24_hours_of_the_shielding_record(hours, late):
    w, inc = warned(T0), included(T0)
    shield = court("Shielded", T0 + 30 * DAY, reason="CREDITOR_REQUEST", recorded=T0 + 31 * DAY)
    feedback = [
        answer("SanctionApplied", inc, T0 + dt.timedelta(hours=1)),
        answer("SanctionLifted", shield, shield.recorded_at + dt.timedelta(hours=hours)),
    ]
    assert (("SANCTION_NOT_LIFTED", "E1") in found([w, inc, shield], feedback)) is late


def test_retention_answers_a_shielding_but_must_end_on_time():
    w, inc = warned(T0), included(T0)
    shield = court("Shielded", T0 + 30 * DAY, reason="CREDITOR_REQUEST")
    until = T0 + 60 * DAY
    kept = answer("SanctionRetained", shield, shield.recorded_at + DAY, legal_basis="法", retain_until=at(until))
    base = [answer("SanctionApplied", inc, T0 + DAY), kept]
    assert found([w, inc, shield], base, as_of=until + DAY) == set()
    assert found([w, inc, shield], base) == {("RETENTION_EXPIRED_NOT_LIFTED", "E1")}
    ended = answer("SanctionLifted", shield, until + DAY)
    assert found([w, inc, shield], [*base, ended]) == set()


@pytest.mark.parametrize(("hours", "late"), [(24, False), (30, True)])
def test_failure_must_be_followed_by_application(hours, late):
    w, inc = warned(T0), included(T0)
    failed = answer("SanctionFailed", inc, T0 + dt.timedelta(hours=1), reason="system down")
    applied = answer("SanctionApplied", inc, T0 + dt.timedelta(hours=hours))
    assert (("SANCTION_FAILED", "E1") in found([w, inc], [failed, applied])) is late
    assert ("SANCTION_FAILED", "E1") in found([w, inc], [failed])


def test_interception_without_an_active_entry_is_wrongful():
    w, inc = warned(T0), included(T0)
    shield = court("Shielded", T0 + 30 * DAY, reason="CREDITOR_REQUEST")
    feedback = [answer("SanctionApplied", inc, T0 + DAY), answer("SanctionLifted", shield, shield.recorded_at)]

    def intercept(when):
        record = feedback_sample(
            "InterceptionRecorded",
            agency="bank",
            entry_id="E1",
            entry_ids=["E1"],
            measure="LOAN_RESTRICTED",
            measures=["LOAN_RESTRICTED"],
            occurred_at=at(when),
        )
        return Recorded(parse_event(record), when, next(_positions))

    history = [w, inc, shield]
    assert found(history, [*feedback, intercept(T0 + 10 * DAY)]) == set()
    assert found(history, [*feedback, intercept(T0 + 31 * DAY)]) == {("WRONGFUL_SANCTION", "E1")}


def test_applying_to_someone_who_is_neither_debtor_nor_representative_is_wrongful():
    w, inc = warned(T0), included(T0)
    wrong = answer("SanctionApplied", inc, T0 + DAY, subject_id="110101198001010053")
    assert found([w, inc], [wrong]) == {("WRONGFUL_SANCTION", "E1")}


def test_republished_events_are_judged_once():
    history = basic()
    again = Recorded(history[1].event, history[1].recorded_at + DAY, next(_positions))
    assert found([*history, again], [answer("SanctionApplied", history[1], T0 + 11 * DAY)]) == set()
