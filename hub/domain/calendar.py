"""Dates the Opinions' deadlines are counted in: calendar months for listing periods, and days that
are either calendar days (the default) or working days (weekends and configured holidays skipped)."""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day of the month `months` later, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class DayCounter:
    """Adds n days to an instant: calendar days, or working days in the instant's own time zone."""

    working_days: bool = False
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    @classmethod
    def calendar_days(cls) -> DayCounter:
        return cls()

    @classmethod
    def working(cls, holidays: Iterable[dt.date] = ()) -> DayCounter:
        return cls(True, frozenset(holidays))

    def is_working_day(self, day: dt.date) -> bool:
        return day.weekday() < 5 and day not in self.holidays

    def add(self, moment: dt.datetime, days: int) -> dt.datetime:
        if not self.working_days:
            return moment + dt.timedelta(days=days)
        current = moment
        remaining = days
        while remaining > 0:
            current += dt.timedelta(days=1)
            if self.is_working_day(current.date()):
                remaining -= 1
        return current
