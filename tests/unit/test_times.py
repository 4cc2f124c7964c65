"""Times as people type and read them: in the courts' zone (Asia/Shanghai), always with their offset."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.domain.calendar import LegalCalendar, Period
from hub.domain.times import iso, read_instant, show

SHANGHAI = ZoneInfo("Asia/Shanghai")
CST = dt.timezone(dt.timedelta(hours=8))


def test_a_date_means_the_end_of_that_day_in_the_courts_zone():
    """An auditor who types --as-of 2026-11-25 means all of that day in Beijing, up to its 24:00."""
    moment = read_instant("2026-11-25", SHANGHAI)
    assert moment == dt.datetime(2026, 11, 26, 0, 0, tzinfo=CST)
    assert moment.utcoffset() == dt.timedelta(hours=8)
    assert moment == dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC), "not midnight UTC, eight hours off"


def test_a_date_may_mean_its_start():
    assert read_instant("2026-11-25", SHANGHAI, end_of_day=False) == dt.datetime(2026, 11, 25, 0, 0, tzinfo=CST)


def test_the_end_of_the_year_rolls_over():
    assert read_instant("2026-12-31", SHANGHAI) == dt.datetime(2027, 1, 1, tzinfo=CST)


def test_a_time_without_offset_is_read_in_the_zone():
    moment = read_instant("2026-11-25T17:30", SHANGHAI)
    assert moment == dt.datetime(2026, 11, 25, 17, 30, tzinfo=CST)
    assert read_instant(" 2026-11-25 17:30:15 ", SHANGHAI) == dt.datetime(2026, 11, 25, 17, 30, 15, tzinfo=CST)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-25T17:30+00:00", dt.datetime(2026, 11, 25, 17, 30, tzinfo=dt.UTC)),
        ("2026-11-25T17:30Z", dt.datetime(2026, 11, 25, 17, 30, tzinfo=dt.UTC)),
        ("2026-11-25T09:30-05:00", dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC)),
    ],
)
def test_an_explicit_offset_is_kept(text, expected):
    """The instant is the one written, and so is its offset (not converted to the courts' zone)."""
    moment = read_instant(text, SHANGHAI)
    assert moment == expected
    assert moment.utcoffset() == dt.datetime.fromisoformat(text).utcoffset()


def test_the_zone_is_the_one_given():
    assert read_instant("2026-11-25", ZoneInfo("UTC")) == dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-02-30", "25/11/2026", "2026-11-25T25:00"])
def test_nonsense_is_refused_with_a_message_saying_how_to_write_it(text):
    with pytest.raises(ValueError) as info:
        read_instant(text, SHANGHAI)
    message = str(info.value)
    assert repr(text) in message and "ISO-8601" in message
    assert "2026-11-25 (the end of that day)" in message and "2026-11-25T17:30" in message


@pytest.mark.parametrize("text", ["20261125", "2026-W48-3"])
def test_other_iso_spellings_of_a_date_also_mean_its_end(text):
    """ISO-8601 basic and week dates name the same day: they must not silently mean its start instead."""
    assert read_instant(text, SHANGHAI) == read_instant("2026-11-25", SHANGHAI)
    assert read_instant(text, SHANGHAI, end_of_day=False) == dt.datetime(2026, 11, 25, tzinfo=CST)


def test_the_end_of_a_legal_day_prints_as_24_00():
    assert show(dt.datetime(2026, 3, 10, 0, 0, tzinfo=CST), SHANGHAI) == "2026-03-09 24:00 +08:00"
    assert show(dt.datetime(1991, 7, 2, 0, 0, tzinfo=SHANGHAI), SHANGHAI) == "1991-07-01 24:00 +09:00", "summer time"


def test_other_times_print_to_the_minute_with_their_offset():
    assert show(dt.datetime(2026, 3, 9, 14, 5, 59, tzinfo=CST), SHANGHAI) == "2026-03-09 14:05 +08:00"
    assert show(dt.datetime(2026, 3, 9, 0, 0, 1, tzinfo=CST), SHANGHAI) == "2026-03-09 00:00 +08:00"


def test_a_utc_instant_is_shown_in_the_courts_zone():
    assert show(dt.datetime(2026, 3, 9, 6, 5, tzinfo=dt.UTC), SHANGHAI) == "2026-03-09 14:05 +08:00"
    assert show(dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC), SHANGHAI) == "2026-03-09 24:00 +08:00"
    assert show(dt.datetime(2026, 3, 9, 6, 5, tzinfo=dt.UTC), ZoneInfo("UTC")) == "2026-03-09 06:05 +00:00"


def test_a_deadline_reads_as_its_last_day():
    """Legal deadlines are ends of days: printed, they name the last day of the period, at 24:00."""
    deadline = LegalCalendar().deadline(dt.datetime(2026, 3, 4, 9, tzinfo=CST), Period(3))
    assert show(deadline, SHANGHAI) == "2026-03-09 24:00 +08:00"


def test_iso_is_machine_readable_in_the_zone():
    assert iso(dt.datetime(2026, 3, 9, 16, 0, tzinfo=dt.UTC), SHANGHAI) == "2026-03-10T00:00:00+08:00"


@given(day=st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2190, 12, 31)))
def test_a_typed_date_shows_as_that_day_at_24_00(day):
    """What the auditor types comes back as the same day at 24:00. (China kept summer time from 1986 to 1991:
    the offset is then +09:00, which is why it is always printed.)"""
    moment = read_instant(day.isoformat(), SHANGHAI)
    offset = "+09:00" if moment.utcoffset() == dt.timedelta(hours=9) else "+08:00"
    assert moment.utcoffset() in (dt.timedelta(hours=8), dt.timedelta(hours=9))
    assert show(moment, SHANGHAI) == f"{day.isoformat()} 24:00 {offset}"
    assert read_instant(day.isoformat(), SHANGHAI, end_of_day=False) + dt.timedelta(days=1) == moment
