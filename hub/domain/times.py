"""Times as people type and read them: in the courts' time zone, always labelled with their offset.

A Chinese auditor who types `--as-of 2026-11-25` means the end of that day in Beijing, not midnight UTC
eight hours earlier; every time printed back says which zone it is in.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

_END_OF_DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T]24:00(?::00)?(\s*(?:Z|[+-]\d{2}:?\d{2})?)$")
_DATE = re.compile(r"^\d{4}(-?\d{2}-?\d{2}|-?W\d{2}-?\d)$")  # a day: 2026-11-25, 20261125, 2026-W48-3


def read_instant(text: str, zone: ZoneInfo, end_of_day: bool = True) -> dt.datetime:
    """An ISO-8601 date or date-time; a date means the end of that day (24:00), or its start when
    `end_of_day` is false; a time without an offset is read in `zone`. Raises ValueError saying why."""
    value = text.strip()
    midnight = _END_OF_DAY.match(value)
    if midnight:  # `2026-03-09 24:00 +08:00`, as `show` prints the end of a legal day
        value = f"{dt.date.fromisoformat(midnight[1]) + dt.timedelta(days=1)}T00:00{midnight[2].strip()}"
    try:
        if _DATE.match(value):
            day = dt.date.fromisoformat(value)
            if end_of_day:
                day += dt.timedelta(days=1)
            return dt.datetime.combine(day, dt.time(0), zone)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 date or time; write 2026-11-25 (the end of that day) or 2026-11-25T17:30"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def show(moment: dt.datetime, zone: ZoneInfo) -> str:
    """`2026-03-09 24:00 +08:00` for the end of a legal day, `2026-03-09 14:05 +08:00` otherwise."""
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    offset = f"{offset[:3]}:{offset[3:]}"
    if local.time() == dt.time(0):
        return f"{(local - dt.timedelta(days=1)):%Y-%m-%d} 24:00 {offset}"
    return f"{local:%Y-%m-%d %H:%M} {offset}"


def iso(moment: dt.datetime, zone: ZoneInfo) -> str:
    """ISO-8601 in the court's zone, for machine-readable output."""
    return moment.astimezone(zone).isoformat()
