"""Periods counted as Chinese procedure counts them (the Civil Procedure Law's rule on periods).

The day of the act is not counted: a period of N days starts the next day and ends at 24:00 of its
N-th day in the court's time zone; a period whose last day is a rest day or statutory holiday ends at
24:00 of the first working day after it. A period of N working days ends at 24:00 of the N-th working
day after the act. Listing periods in months keep calendar-month arithmetic (31 January + 1 month is
28/29 February) and then the same end-of-day rule.

Which days are working days comes from the official calendar (the `holidays` library's China
calendar, which knows the make-up working days, 调休, of the years the State Council has announced),
with dates a setting adds on either side.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

COURT_TIME_ZONE = "Asia/Shanghai"
Unit = Literal["days", "working days"]
_PERIOD = re.compile(r"^\s*(\d{1,4})\s+(working\s+)?days?\s*$")


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day of the month `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class Period:
    """A number of days or working days, written the way the settings spell it: `3 days`, `3 working days`."""

    count: int
    unit: Unit = "days"

    def __post_init__(self) -> None:
        if self.unit not in ("days", "working days"):
            raise ValueError(f"a period counts 'days' or 'working days', not {self.unit!r}")
        if not 0 <= self.count <= 9999:
            raise ValueError(f"a period of {self.count} days is out of range (0-9999)")

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text)
        if not match:
            raise ValueError(f"{text!r} is not a period; write it like '3 days' or '3 working days'")
        return cls(int(match[1]), "working days" if match[2] else "days")

    def __str__(self) -> str:
        unit = self.unit if self.count != 1 else self.unit.removesuffix("s")
        return f"{self.count} {unit}"


@dataclass(frozen=True)
class LegalCalendar:
    """The court's calendar: its time zone, the official rest days, and the dates settings add."""

    time_zone: str = COURT_TIME_ZONE
    extra_holidays: frozenset[dt.date] = field(default_factory=frozenset)
    extra_working_days: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def of(
        cls, time_zone: str = COURT_TIME_ZONE, holidays: Iterable[dt.date] = (), working_days: Iterable[dt.date] = ()
    ) -> LegalCalendar:
        return cls(time_zone, frozenset(holidays), frozenset(working_days))

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @cached_property
    def _official(self) -> holidays.HolidayBase:
        return holidays.China()  # years are filled in on first use

    @cached_property
    def _known(self) -> dict[dt.date, bool]:
        return {}

    def is_working_day(self, day: dt.date) -> bool:
        known = self._known.get(day)
        if known is None:
            if day in self.extra_working_days:
                known = True
            elif day in self.extra_holidays:
                known = False
            else:
                known = self._official.is_working_day(day)
            self._known[day] = known
        return known

    def local_day(self, moment: dt.datetime) -> dt.date:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{moment.isoformat()} has no UTC offset: legal days are counted in the courts' zone")
        return moment.astimezone(self.zone).date()

    def end_of_day(self, day: dt.date) -> dt.datetime:
        """24:00 of `day` in the court's zone (the first instant of the next day)."""
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), self.zone)

    def working_day_on_or_after(self, day: dt.date) -> dt.date:
        while not self.is_working_day(day):
            day += dt.timedelta(days=1)
        return day

    def last_day(self, act: dt.datetime, period: Period) -> dt.date:
        """The last day of `period` counted from `act` (the act's own day not counted)."""
        day = self.local_day(act)
        if period.unit == "days":
            return self.working_day_on_or_after(day + dt.timedelta(days=period.count))
        remaining = period.count
        while remaining > 0:
            day += dt.timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return day

    def deadline(self, act: dt.datetime, period: Period) -> dt.datetime:
        """The instant `period` after `act` runs out: an act at or before it is on time."""
        return self.end_of_day(self.last_day(act, period))

    def months_end(self, start: dt.datetime, months: int) -> dt.datetime:
        """The end of a listing period of `months` from `start`: the same date `months` later, to 24:00,
        carried to the next working day when that date is a rest day."""
        self.local_day(start)
        local = start.astimezone(self.zone)
        last = self.working_day_on_or_after(add_months(local, months).date())
        return self.end_of_day(last)
