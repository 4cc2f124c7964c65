"""Legal day counting (hub/domain/calendar.py), as the Civil Procedure Law counts periods.

The examples pin the acceptance cases one date at a time; the properties check the counting rules for
acts anywhere in 2020-2027, at any time of day and in any offset, against a reading of the official
calendar made here independently of the module (its own `holidays.China` instance).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain.calendar import COURT_TIME_ZONE, LegalCalendar, Period, Unit, add_months

CST = dt.timezone(dt.timedelta(hours=8))
SHANGHAI = ZoneInfo(COURT_TIME_ZONE)
DAY = dt.timedelta(days=1)
CALENDAR = LegalCalendar()
# The reference the properties compare with: the same official calendar, read without the module.
OFFICIAL = holidays.China(years=range(2019, 2030))


def at(text: str) -> dt.datetime:
    """An instant written in ISO 8601 with its offset, as the acceptance cases are written."""
    return dt.datetime.fromisoformat(text)


def date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def officially_working(day: dt.date, holidays: frozenset[dt.date] = frozenset()) -> bool:
    """Whether `day` is a working day in the official calendar once `holidays` are added as rest days."""
    return day not in holidays and OFFICIAL.is_working_day(day)


def court_day(moment: dt.datetime) -> dt.date:
    """The date at the court, computed without the zone database: China has kept UTC+8 all year since 1991."""
    return (moment.astimezone(dt.UTC) + dt.timedelta(hours=8)).date()


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every day from `first` up to `last`, `last` excluded."""
    return [first + k * DAY for k in range((last - first).days)]


# --- Calendar months ----------------------------------------------------------------------------------


def test_add_months_keeps_the_day_and_clamps_at_month_end():
    assert add_months(dt.datetime(2024, 1, 15, 10, tzinfo=CST), 24) == dt.datetime(2026, 1, 15, 10, tzinfo=CST)
    assert add_months(dt.datetime(2024, 1, 31, tzinfo=CST), 1) == dt.datetime(2024, 2, 29, tzinfo=CST)
    assert add_months(dt.datetime(2023, 11, 30, tzinfo=CST), 27) == dt.datetime(2026, 2, 28, tzinfo=CST)


# --- The official calendar ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2026-03-09", True),  # an ordinary Monday
        ("2026-03-07", False),  # an ordinary Saturday
        *((f"2026-10-0{d}", False) for d in range(1, 8)),  # National Day, 1-7 October (4 October a Sunday)
        ("2026-10-08", True),  # the first working day after it
        ("2026-09-20", True),  # a Sunday worked in exchange for National Day (调休)
        ("2026-10-10", True),  # a Saturday worked in exchange for National Day
        ("2026-02-28", True),  # a Saturday worked in exchange for the Spring Festival
    ],
)
def test_official_calendar_knows_holidays_and_make_up_working_days(day: str, working: bool):
    """The cases below lean on these dates; if the `holidays` data changed, this says so first."""
    assert CALENDAR.is_working_day(date(day)) is working


def test_end_of_day_is_the_first_instant_of_the_next_day():
    assert CALENDAR.end_of_day(date("2026-03-09")) == at("2026-03-10T00:00:00+08:00")


# --- Periods in days -----------------------------------------------------------------------------------


def test_review_period_from_a_wednesday_ends_at_24_00_on_monday():
    """Received Wednesday 4 March: the 3 days are Thu, Fri, Sat; Saturday is a rest day, so Monday 24:00."""
    received = at("2026-03-04T09:00:00+08:00")
    deadline = CALENDAR.deadline(received, Period(3))

    assert CALENDAR.last_day(received, Period(3)) == date("2026-03-09")
    assert deadline == at("2026-03-10T00:00:00+08:00")
    assert at("2026-03-09T23:59:00+08:00") <= deadline  # Monday 23:59: on time
    assert at("2026-03-10T00:00:00+08:00") <= deadline  # 24:00 itself: still on time
    assert at("2026-03-10T09:00:00+08:00") > deadline  # Tuesday morning: late


@pytest.mark.parametrize("act_day", ["2026-09-28", "2026-09-29", "2026-09-30"])
def test_days_period_ending_in_national_day_is_carried_to_the_first_working_day_after_it(act_day: str):
    """The third day falls on 1, 2 or 3 October: all rest days up to 7 October, so 8 October 24:00."""
    act = dt.datetime.combine(date(act_day), dt.time(15), CST)
    assert CALENDAR.last_day(act, Period(3)) == date("2026-10-08")
    assert CALENDAR.deadline(act, Period(3)) == at("2026-10-09T00:00:00+08:00")


def test_days_period_ending_on_a_make_up_saturday_is_not_carried():
    act = at("2026-10-07T10:00:00+08:00")
    assert CALENDAR.deadline(act, Period(3)) == at("2026-10-11T00:00:00+08:00")


def test_days_period_of_zero_days_ends_with_the_act_day_or_the_next_working_day():
    assert CALENDAR.deadline(at("2026-03-04T09:00:00+08:00"), Period(0)) == at("2026-03-05T00:00:00+08:00")
    assert CALENDAR.deadline(at("2026-03-07T09:00:00+08:00"), Period(0)) == at("2026-03-10T00:00:00+08:00")


# --- Periods in working days ---------------------------------------------------------------------------


def test_make_up_saturday_counts_as_a_working_day():
    """From Thursday 8 October 2026, 2 working days are Friday 9 and the make-up Saturday 10."""
    act = at("2026-10-08T10:00:00+08:00")
    assert CALENDAR.last_day(act, Period(2, "working days")) == date("2026-10-10")
    assert CALENDAR.deadline(act, Period(2, "working days")) == at("2026-10-11T00:00:00+08:00")


def test_ordinary_weekend_is_skipped_by_working_days():
    """The same count a week later skips the weekend: Friday 16, then Monday 19."""
    act = at("2026-10-15T10:00:00+08:00")
    assert CALENDAR.deadline(act, Period(2, "working days")) == at("2026-10-20T00:00:00+08:00")


def test_make_up_sunday_counts_as_a_working_day():
    act = at("2026-09-18T10:00:00+08:00")  # a Friday; Saturday 19 is a rest day, Sunday 20 is worked
    assert CALENDAR.last_day(act, Period(1, "working days")) == date("2026-09-20")


def test_working_days_skip_the_whole_national_day_holiday():
    act = at("2026-09-28T10:00:00+08:00")  # Tuesday 29, Wednesday 30, then Thursday 8 October
    assert CALENDAR.deadline(act, Period(3, "working days")) == at("2026-10-09T00:00:00+08:00")


# --- Listing periods in months -------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["2024-10-01T10:00:00+08:00", "2024-10-03T10:00:00+08:00"])
def test_24_month_listing_period_ending_in_a_holiday_is_carried(start: str):
    assert CALENDAR.months_end(at(start), 24) == at("2026-10-09T00:00:00+08:00")


def test_24_month_listing_period_ending_on_a_working_day_ends_that_day():
    assert CALENDAR.months_end(at("2024-03-04T10:00:00+08:00"), 24) == at("2026-03-05T00:00:00+08:00")


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ("2024-01-31T10:00:00+08:00", 1, "2024-03-01T00:00:00+08:00"),  # 29 Feb 2024, a Thursday
        ("2024-01-30T20:00:00+00:00", 1, "2024-03-01T00:00:00+08:00"),  # the same instant in UTC
        ("2026-01-31T10:00:00+08:00", 1, "2026-03-01T00:00:00+08:00"),  # 28 Feb 2026, a make-up Saturday
        ("2026-03-31T10:00:00+08:00", 2, "2026-06-02T00:00:00+08:00"),  # 31 May is a Sunday: Monday 1 June
    ],
)
def test_listing_period_clamps_to_the_month_end(start: str, months: int, end: str):
    assert CALENDAR.months_end(at(start), months) == at(end)


# --- The court's local date ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "court_date", "deadline"),
    [
        # 20:00 UTC on Tuesday is 04:00 on Wednesday in Shanghai: the acceptance case again.
        ("2026-03-03T20:00:00Z", "2026-03-04", "2026-03-10T00:00:00+08:00"),
        # Sunday in UTC, Monday in Shanghai: Monday + 3 days is Thursday (Sunday + 3 would be Wednesday).
        ("2026-03-01T20:00:00+00:00", "2026-03-02", "2026-03-06T00:00:00+08:00"),
        # Monday in New York, Tuesday in Shanghai: Friday (Monday + 3 would be Thursday).
        ("2026-03-02T11:30:00-05:00", "2026-03-03", "2026-03-07T00:00:00+08:00"),
        # 23:59 in Shanghai given as UTC stays on that day.
        ("2026-03-02T15:59:00Z", "2026-03-02", "2026-03-06T00:00:00+08:00"),
    ],
)
def test_acts_are_counted_on_the_courts_local_date(act: str, court_date: str, deadline: str):
    assert CALENDAR.local_day(at(act)) == date(court_date)
    assert CALENDAR.deadline(at(act), Period(3)) == at(deadline)


# --- Dates added by the settings -----------------------------------------------------------------------


def test_extra_holiday_carries_a_period_further():
    calendar = LegalCalendar.of(holidays=[date("2026-03-09")])  # Monday made a rest day
    assert calendar.deadline(at("2026-03-04T09:00:00+08:00"), Period(3)) == at("2026-03-11T00:00:00+08:00")


def test_extra_working_day_ends_a_period_on_a_weekend():
    calendar = LegalCalendar.of(working_days=[date("2026-03-07")])  # Saturday made a working day
    assert calendar.deadline(at("2026-03-04T09:00:00+08:00"), Period(3)) == at("2026-03-08T00:00:00+08:00")


def test_extra_working_day_overrides_an_official_holiday():
    calendar = LegalCalendar.of(working_days=[date("2026-10-01")])
    assert calendar.is_working_day(date("2026-10-01"))
    assert calendar.deadline(at("2026-09-28T10:00:00+08:00"), Period(3)) == at("2026-10-02T00:00:00+08:00")


def test_extra_holiday_overrides_an_official_make_up_working_day():
    calendar = LegalCalendar.of(holidays=[date("2026-10-10")])
    assert not calendar.is_working_day(date("2026-10-10"))
    # Friday 9, then (Saturday 10 now a rest day, Sunday 11) Monday 12.
    act = at("2026-10-08T10:00:00+08:00")
    assert calendar.deadline(act, Period(2, "working days")) == at("2026-10-13T00:00:00+08:00")


# --- Writing periods -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "period"),
    [
        ("1 day", Period(1)),
        ("10 days", Period(10)),
        ("0 days", Period(0)),
        ("3 working days", Period(3, "working days")),
        ("1 working day", Period(1, "working days")),
        (" 3  working  days ", Period(3, "working days")),
    ],
)
def test_period_parse_accepts(text: str, period: Period):
    assert Period.parse(text) == period


@pytest.mark.parametrize("text", ["three days", "3", "-1 days", "3 hours", "", "days", "3 weeks", "3 working"])
def test_period_parse_refuses_with_the_text_in_the_message(text: str):
    with pytest.raises(ValueError) as refused:
        Period.parse(text)
    assert repr(text) in str(refused.value)


@pytest.mark.parametrize(
    ("period", "text"),
    [
        (Period(1), "1 day"),
        (Period(3), "3 days"),
        (Period(0), "0 days"),
        (Period(1, "working days"), "1 working day"),
        (Period(10, "working days"), "10 working days"),
    ],
)
def test_period_str_round_trips(period: Period, text: str):
    assert str(period) == text
    assert Period.parse(text) == period


# --- Properties ----------------------------------------------------------------------------------------

MANY = settings(max_examples=300, deadline=None)
OFFSETS = st.one_of(
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))),
    st.sampled_from(
        [ZoneInfo(name) for name in ("UTC", COURT_TIME_ZONE, "America/New_York", "Europe/Berlin", "Pacific/Kiritimati")]
    ),
)
ACTS = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),
    max_value=dt.datetime(2027, 12, 31, 23, 59, 59, 999999),
    timezones=OFFSETS,
    allow_imaginary=False,
)
COUNTS = st.integers(0, 30)
UNITS: st.SearchStrategy[Unit] = st.sampled_from(["days", "working days"])
PERIODS = st.builds(Period, COUNTS, UNITS)


@MANY
@given(act=ACTS, period=PERIODS)
def test_deadline_is_24_00_of_its_last_day_in_shanghai(act: dt.datetime, period: Period):
    deadline = CALENDAR.deadline(act, period)
    last = CALENDAR.last_day(act, period)
    local = deadline.astimezone(SHANGHAI)

    assert local.time() == dt.time(0)
    assert local.date() == last + DAY
    assert deadline.astimezone(dt.UTC).time() == dt.time(16)  # 00:00 at UTC+8, without the zone database
    assert deadline == CALENDAR.end_of_day(last)


@MANY
@given(act=ACTS, period=PERIODS)
def test_last_day_is_a_working_day(act: dt.datetime, period: Period):
    """Always for days (also 0 days: the act day, or the first working day after it); for working days when N>0."""
    last = CALENDAR.last_day(act, period)
    act_day = court_day(act)
    if period.unit == "days" or period.count > 0:
        assert officially_working(last)
    if period == Period(0):
        assert all(not officially_working(day) for day in days_between(act_day, last))
    if period == Period(0, "working days"):
        assert last == act_day


@MANY
@given(act=ACTS, period=PERIODS)
def test_deadline_is_never_stricter_than_counting_instants(act: dt.datetime, period: Period):
    """Not counting the act day and running to 24:00 can only give more time than act + N x 24h."""
    deadline = CALENDAR.deadline(act, period)
    assert deadline >= act + period.count * DAY
    assert deadline >= CALENDAR.end_of_day(court_day(act))
    assert deadline > act


@MANY
@given(act=ACTS, unit=UNITS, counts=st.lists(COUNTS, min_size=2, max_size=2))
def test_a_longer_period_never_ends_earlier(act: dt.datetime, unit: Unit, counts: list[int]):
    shorter, longer = sorted(counts)
    assert CALENDAR.deadline(act, Period(shorter, unit)) <= CALENDAR.deadline(act, Period(longer, unit))


@MANY
@given(act=ACTS, count=st.integers(1, 30))
def test_working_days_never_end_before_as_many_days(act: dt.datetime, count: int):
    """N working days reach at least N calendar days and end on a working day, so never before N days.

    Not for N = 0: 0 working days end with the act day even when it is a rest day, 0 days carry on."""
    assert CALENDAR.deadline(act, Period(count, "working days")) >= CALENDAR.deadline(act, Period(count))


@MANY
@given(act=ACTS, count=COUNTS)
def test_days_end_on_the_nth_day_or_the_first_working_day_after_it(act: dt.datetime, count: int):
    nth = court_day(act) + count * DAY
    last = CALENDAR.last_day(act, Period(count))
    if officially_working(nth):
        assert last == nth
    else:
        assert last > nth
        assert all(not officially_working(day) for day in days_between(nth, last))


@MANY
@given(act=ACTS, count=COUNTS)
def test_working_days_count_exactly_n_working_days_after_the_act_day(act: dt.datetime, count: int):
    act_day = court_day(act)
    last = CALENDAR.last_day(act, Period(count, "working days"))
    counted = [day for day in days_between(act_day + DAY, last + DAY) if officially_working(day)]
    assert len(counted) == count
    if count > 0:
        assert counted[-1] == last


@MANY
@given(act=ACTS, period=PERIODS)
def test_only_the_courts_date_of_the_act_matters(act: dt.datetime, period: Period):
    """The same instant in any offset, or any other instant of the same day in Shanghai, gives the same end."""
    deadline = CALENDAR.deadline(act, period)
    day = court_day(act)
    assert CALENDAR.local_day(act) == day
    assert CALENDAR.deadline(act.astimezone(SHANGHAI), period) == deadline
    assert CALENDAR.deadline(dt.datetime.combine(day, dt.time.min, SHANGHAI), period) == deadline
    assert CALENDAR.deadline(dt.datetime.combine(day, dt.time.max, SHANGHAI), period) == deadline


@MANY
@given(act=ACTS, period=PERIODS, shift=st.integers(-3, 60))
def test_an_extra_holiday_never_makes_a_deadline_earlier(act: dt.datetime, period: Period, shift: int):
    """And one outside the days the period is counted over changes nothing."""
    extra = court_day(act) + shift * DAY
    before = CALENDAR.deadline(act, period)
    after = LegalCalendar.of(holidays=[extra]).deadline(act, period)
    assert after >= before
    first = court_day(act) + (period.count * DAY if period.unit == "days" else DAY)
    if not first <= extra <= CALENDAR.last_day(act, period):
        assert after == before


@MANY
@given(act=ACTS, period=PERIODS, shift=st.integers(-3, 60))
def test_an_extra_working_day_never_makes_a_deadline_later(act: dt.datetime, period: Period, shift: int):
    extra = court_day(act) + shift * DAY
    after = LegalCalendar.of(working_days=[extra]).deadline(act, period)
    assert after <= CALENDAR.deadline(act, period)


@MANY
@given(
    days=st.lists(st.dates(dt.date(2020, 1, 1), dt.date(2028, 12, 31)), min_size=1, max_size=10),
    data=st.data(),
)
def test_extra_dates_override_the_official_calendar(days: list[dt.date], data: st.DataObject):
    """Each date is a rest day if listed as a holiday, a working day if listed as one, else as officially."""
    rest = frozenset(data.draw(st.lists(st.sampled_from(days))))
    work = frozenset(data.draw(st.lists(st.sampled_from(days)))) - rest
    calendar = LegalCalendar.of(holidays=rest, working_days=work)
    for day in days:
        assert calendar.is_working_day(day) is (day in work or officially_working(day, rest))


@MANY
@given(start=ACTS, months=st.integers(0, 36))
def test_listing_period_ends_on_the_same_date_or_the_first_working_day_after_it(start: dt.datetime, months: int):
    end = CALENDAR.months_end(start, months).astimezone(SHANGHAI)
    same_date = add_months(start.astimezone(SHANGHAI), months).date()
    last = end.date() - DAY
    assert end.time() == dt.time(0)
    assert last >= same_date
    assert officially_working(last)
    assert all(not officially_working(day) for day in days_between(same_date, last))


SPACES = st.lists(st.sampled_from([" ", "  ", "\t"]), min_size=3, max_size=3)


@MANY
@given(count=st.integers(0, 9999), unit=UNITS, spaces=SPACES)
def test_period_text_round_trips(count: int, unit: Unit, spaces: list[str]):
    period = Period(count, unit)
    assert Period.parse(str(period)) == period
    padded = spaces[0] + str(period).replace(" ", spaces[1]) + spaces[2]
    assert Period.parse(padded) == period
