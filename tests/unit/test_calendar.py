import datetime as dt

from hub.domain.calendar import DayCounter, add_months

CST = dt.timezone(dt.timedelta(hours=8))


def test_add_months_keeps_the_day_and_clamps_at_month_end():
    assert add_months(dt.datetime(2024, 1, 15, 10, tzinfo=CST), 24) == dt.datetime(2026, 1, 15, 10, tzinfo=CST)
    assert add_months(dt.datetime(2024, 1, 31, tzinfo=CST), 1) == dt.datetime(2024, 2, 29, tzinfo=CST)
    assert add_months(dt.datetime(2023, 11, 30, tzinfo=CST), 27) == dt.datetime(2026, 2, 28, tzinfo=CST)


def test_calendar_days_count_weekends():
    friday = dt.datetime(2026, 1, 23, 17, tzinfo=CST)
    assert DayCounter.calendar_days().add(friday, 3) == dt.datetime(2026, 1, 26, 17, tzinfo=CST)


def test_working_days_skip_weekends_and_holidays():
    friday = dt.datetime(2026, 1, 23, 17, tzinfo=CST)
    counter = DayCounter.working(holidays=[dt.date(2026, 1, 27)])
    # Mon 26, (Tue 27 holiday), Wed 28, Thu 29
    assert counter.add(friday, 3) == dt.datetime(2026, 1, 29, 17, tzinfo=CST)
