"""Oversight figures: breaches per week and feedback delays per day, computed by hand below."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.domain.events import parse_event
from hub.domain.lifecycle import Recorded
from hub.domain.oversight import DailyDelays, WeeklyCounts, breaches_per_week, feedback_delays, nearest_rank
from hub.domain.rules import Violation
from tests.support import court_sample, feedback_sample

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
# Wednesday 2026-03-18, noon in Shanghai: its week starts Monday 2026-03-16.
UNTIL = dt.datetime(2026, 3, 18, 12, tzinfo=SHANGHAI)
MONDAY = dt.date(2026, 3, 16)


def violation(party: str, due_at: dt.datetime, rule: str = "SANCTION_NOT_APPLIED") -> Violation:
    return Violation(rule, party, "E1", due_at, "test")


def court_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def feedback_id(n: int) -> str:
    return f"10000000-0000-4000-8000-{n:012d}"


def court_record(n: int, recorded_at: dt.datetime, position: int) -> Recorded:
    record: dict[str, Any] = court_sample("Included")
    record.update(event_id=court_id(n), entry_id="E1", occurred_at=recorded_at.isoformat())
    return Recorded(parse_event(record), recorded_at, position)


def answer(
    agency: str, court_n: int | None, n: int, recorded_at: dt.datetime, position: int, kind: str = "SanctionApplied"
) -> Recorded:
    overrides: dict[str, Any] = {"agency": agency, "event_id": feedback_id(n), "occurred_at": recorded_at.isoformat()}
    if court_n is not None:
        overrides["court_event_id"] = court_id(court_n)
    return Recorded(parse_event(feedback_sample(kind, **overrides)), recorded_at, position)


# --- breaches per week ---------------------------------------------------------------------------------


def test_the_window_is_every_monday_up_to_the_week_of_until_even_when_empty():
    counts = breaches_per_week([], SHANGHAI, weeks=3, until=UNTIL)
    assert counts == WeeklyCounts(weeks=[dt.date(2026, 3, 2), dt.date(2026, 3, 9), MONDAY], parties=[], counts={})


def test_an_empty_history_has_all_twelve_weeks_and_no_counts():
    counts = breaches_per_week([], SHANGHAI, until=UNTIL)
    assert len(counts.weeks) == 12 and counts.weeks[-1] == MONDAY
    assert all(w.weekday() == 0 for w in counts.weeks)
    assert counts.parties == [] and counts.counts == {}


def test_a_breach_due_exactly_at_monday_midnight_in_shanghai_falls_in_that_week():
    midnight = dt.datetime(2026, 3, 16, 0, tzinfo=SHANGHAI)  # Sunday 16:00 UTC
    just_before = midnight - dt.timedelta(microseconds=1)
    counts = breaches_per_week(
        [violation("agency:bank", midnight.astimezone(UTC)), violation("agency:bank", just_before)],
        SHANGHAI,
        weeks=2,
        until=UNTIL,
    )
    assert counts.counts == {"agency:bank": [1, 1]}


def test_breaches_are_counted_per_party_sorted_and_outside_the_window_left_out():
    history = [
        violation("court:J0105", dt.datetime(2026, 3, 17, 9, tzinfo=SHANGHAI), "SHIELD_OVERDUE"),
        violation("agency:bank", dt.datetime(2026, 3, 10, 9, tzinfo=SHANGHAI)),
        violation("agency:bank", dt.datetime(2026, 3, 15, 23, 59, tzinfo=SHANGHAI)),  # Sunday: the week of 9 March
        violation("agency:bank", dt.datetime(2026, 3, 16, 9, tzinfo=SHANGHAI)),
        violation("agency:transport", dt.datetime(2026, 3, 1, 9, tzinfo=SHANGHAI)),  # before the window
        violation("agency:transport", dt.datetime(2026, 3, 23, 0, tzinfo=SHANGHAI)),  # the week after until
    ]
    counts = breaches_per_week(history, SHANGHAI, weeks=2, until=UNTIL)
    assert counts.weeks == [dt.date(2026, 3, 9), MONDAY]
    assert counts.parties == ["agency:bank", "court:J0105"]
    assert counts.counts == {"agency:bank": [2, 1], "court:J0105": [0, 1]}


def test_until_is_read_in_the_zone():
    # Sunday 2026-03-15 20:00 UTC is already Monday 04:00 in Shanghai.
    counts = breaches_per_week([], SHANGHAI, weeks=1, until=dt.datetime(2026, 3, 15, 20, tzinfo=UTC))
    assert counts.weeks == [MONDAY]


def test_naive_times_and_empty_windows_are_refused():
    with pytest.raises(ValueError, match="no UTC offset"):
        breaches_per_week([], SHANGHAI, until=dt.datetime(2026, 3, 18))
    with pytest.raises(ValueError, match="weeks"):
        breaches_per_week([], SHANGHAI, weeks=0, until=UNTIL)


# --- nearest rank --------------------------------------------------------------------------------------


def test_nearest_rank_of_one_to_a_hundred():
    values = [float(v) for v in range(100, 0, -1)]
    assert nearest_rank(values, 99) == 99
    assert nearest_rank(values, 50) == 50
    assert nearest_rank(values, 100) == 100
    assert nearest_rank([3.0, 1.0, 2.0], 99) == 3  # fewer than 100 values: the maximum
    assert nearest_rank([7.0], 1) == 7


def test_nearest_rank_refuses_nothing_and_impossible_percents():
    with pytest.raises(ValueError):
        nearest_rank([], 99)
    with pytest.raises(ValueError):
        nearest_rank([1.0], 0)


# --- feedback delays -----------------------------------------------------------------------------------


def test_an_empty_history_gives_every_day_and_no_agency():
    delays = feedback_delays([], [], SHANGHAI, until=UNTIL)
    assert len(delays.days) == 14
    assert delays.days[0] == dt.date(2026, 3, 5) and delays.days[-1] == dt.date(2026, 3, 18)
    assert delays == DailyDelays(days=delays.days, agencies=[], median={}, p99={}, count={})


def test_a_day_without_answers_is_none_and_the_delay_runs_between_the_two_records():
    published = dt.datetime(2026, 3, 16, 10, tzinfo=SHANGHAI)
    court = [court_record(1, published, 1)]
    feedback = [answer("bank", 1, 1, published + 2 * HOUR, 1)]
    delays = feedback_delays(court, feedback, SHANGHAI, days=3, until=UNTIL)
    assert delays.days == [dt.date(2026, 3, 16), dt.date(2026, 3, 17), dt.date(2026, 3, 18)]
    assert delays.agencies == ["bank"]
    assert delays.median == {"bank": [7200.0, None, None]}
    assert delays.p99 == {"bank": [7200.0, None, None]}
    assert delays.count == {"bank": [1, 0, 0]}


def test_a_republished_feedback_or_court_act_counts_once_at_its_first_record():
    published = dt.datetime(2026, 3, 17, 9, tzinfo=SHANGHAI)
    court = [court_record(1, published, 1), court_record(1, published + 5 * HOUR, 2)]  # republished court act
    first = answer("bank", 1, 1, published + HOUR, 10)
    again = answer("bank", 1, 1, published + 3 * HOUR, 11)  # the same feedback event, republished
    delays = feedback_delays(court, [again, first], SHANGHAI, days=2, until=UNTIL)
    assert delays.count == {"bank": [1, 0]}
    assert delays.median == {"bank": [3600.0, None]}


def test_median_p99_and_count_per_agency_per_local_day():
    published = dt.datetime(2026, 3, 16, 8, tzinfo=SHANGHAI)
    court = [court_record(n, published, n) for n in (1, 2, 3, 4)]
    feedback = [
        # bank answers on 16 March (Shanghai) after 1, 2, 3 and 10 hours.
        answer("bank", 1, 1, published + 1 * HOUR, 11),
        answer("bank", 2, 2, published + 2 * HOUR, 12),
        answer("bank", 3, 3, published + 3 * HOUR, 13),
        answer("bank", 4, 4, published + 10 * HOUR, 14, kind="SanctionFailed"),
        # transport answers at 00:30 on 17 March Shanghai, still 16 March in UTC.
        answer("transport", 1, 5, dt.datetime(2026, 3, 16, 16, 30, tzinfo=UTC), 15),
    ]
    delays = feedback_delays(court, feedback, SHANGHAI, days=2, until=UNTIL.replace(day=17))
    assert delays.days == [dt.date(2026, 3, 16), dt.date(2026, 3, 17)]
    assert delays.agencies == ["bank", "transport"]
    assert delays.median == {"bank": [2.5 * 3600, None], "transport": [None, 16.5 * 3600]}
    assert delays.p99 == {"bank": [10 * 3600.0, None], "transport": [None, 16.5 * 3600]}
    assert delays.count == {"bank": [4, 0], "transport": [0, 1]}


def test_an_act_recorded_before_the_agency_started_counts_from_its_start():
    published = dt.datetime(2025, 6, 1, 9, tzinfo=SHANGHAI)  # long before the agency joined
    joined = dt.datetime(2026, 3, 18, 8, tzinfo=SHANGHAI)
    court = [court_record(1, published, 1), court_record(2, joined + HOUR, 2)]
    feedback = [answer("tax", 1, 1, joined + 2 * HOUR, 10), answer("tax", 2, 2, joined + 2 * HOUR, 11)]
    delays = feedback_delays(court, feedback, SHANGHAI, days=1, until=UNTIL, starts={"tax": joined, "bank": None})
    assert delays.median == {"tax": [1.5 * 3600]}  # 2 h from its start; 1 h from the second act's record
    assert delays.p99 == {"tax": [2 * 3600.0]}
    unstarted = feedback_delays(court, feedback, SHANGHAI, days=1, until=UNTIL)
    assert unstarted.p99["tax"][0] > 200 * DAY.total_seconds()


def test_interceptions_orphans_and_answers_outside_the_window_are_left_out_and_early_ones_clamped():
    published = dt.datetime(2026, 3, 18, 9, tzinfo=SHANGHAI)
    court = [court_record(1, published, 1)]
    feedback = [
        answer("transport", None, 1, published + HOUR, 10, kind="InterceptionRecorded"),
        answer("transport", 99, 2, published + HOUR, 11),  # answers a court act not in the record
        answer("transport", 1, 3, published + 2 * DAY, 12),  # after the day of until
        answer("transport", 1, 4, published - dt.timedelta(seconds=2), 13),  # clocks disagree: clamped at 0
    ]
    delays = feedback_delays(court, feedback, SHANGHAI, days=1, until=UNTIL)
    assert delays.median == {"transport": [0.0]}
    assert delays.count == {"transport": [1]}


def test_feedback_window_is_refused_when_empty_or_naive():
    with pytest.raises(ValueError, match="days"):
        feedback_delays([], [], SHANGHAI, days=0, until=UNTIL)
    with pytest.raises(ValueError, match="no UTC offset"):
        feedback_delays([], [], SHANGHAI, until=dt.datetime(2026, 3, 18))
