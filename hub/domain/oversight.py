"""Oversight figures for the dashboard: how often each party breaches, how fast each agency answers.

Pure functions of what the ledger already judged (violations) and what the broker recorded (court and
feedback records), so a chart can be recomputed from the record at any time and always agrees with it.
Periods are calendar weeks and days in the courts' zone, because that is how the people reading the
dashboard count them: a breach due at Monday 00:00 in Asia/Shanghai belongs to that Monday's week, even
though it is still Sunday in UTC. Every period of the window is present, zeros included, so bars and
lines line up on the same axis and a quiet week shows as quiet rather than as missing.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hub.domain.events import FeedbackEvent
from hub.domain.history import first_records
from hub.domain.lifecycle import Recorded
from hub.domain.rules import Violation

__all__ = [
    "Answer",
    "DailyDelays",
    "WeeklyCounts",
    "answers",
    "breaches_per_week",
    "daily_delays",
    "feedback_delays",
    "nearest_rank",
    "window_start",
]

# Feedback that answers no court act: an interception is reported when a barred debtor is stopped,
# long after the sanction was applied, so its "delay" would measure the debtor, not the agency.
_NOT_ANSWERS = frozenset({"InterceptionRecorded"})


@dataclass(frozen=True)
class WeeklyCounts:
    """Violations per week per party: `counts[party][i]` is the number due in the week starting `weeks[i]`."""

    weeks: list[dt.date]  # Mondays, oldest first
    parties: list[str]  # sorted
    counts: dict[str, list[int]]


@dataclass(frozen=True)
class DailyDelays:
    """Feedback delays in seconds per day per agency; a day with no feedback has None (not 0, which is fast)."""

    days: list[dt.date]  # oldest first
    agencies: list[str]  # sorted
    median: dict[str, list[float | None]]
    p99: dict[str, list[float | None]]
    count: dict[str, list[int]]


def _local_date(moment: dt.datetime, zone: ZoneInfo, what: str) -> dt.date:
    # A naive time would be read in the server's own zone, which is nobody's calendar: refuse it.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} {moment.isoformat()} has no UTC offset")
    return moment.astimezone(zone).date()


def _monday(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def breaches_per_week(
    violations: Iterable[Violation], zone: ZoneInfo, weeks: int = 12, *, until: dt.datetime
) -> WeeklyCounts:
    """Count violations per ISO week (Monday to Sunday in `zone`, by `due_at`) per party.

    The window is the `weeks` weeks ending with the week that contains `until`; violations due outside
    it are left out. A violation is placed by its deadline, not by when the ledger noticed it, so the
    count for a past week does not change as the ledger re-judges the same history. Only parties with
    at least one violation in the window are listed.
    """
    if weeks < 1:
        raise ValueError(f"weeks must be at least 1, not {weeks}")
    last = _monday(_local_date(until, zone, "until"))
    mondays = [last - dt.timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    index = {monday: i for i, monday in enumerate(mondays)}
    counts: dict[str, list[int]] = {}
    for v in violations:
        i = index.get(_monday(_local_date(v.due_at, zone, "due_at")))
        if i is not None:
            counts.setdefault(v.party, [0] * weeks)[i] += 1
    parties = sorted(counts)
    return WeeklyCounts(weeks=mondays, parties=parties, counts={p: counts[p] for p in parties})


def nearest_rank(values: list[float], percent: int) -> float:
    """The `percent`-th percentile by the nearest-rank method: the smallest value with at least `percent`%
    of the values at or below it, i.e. sorted(values)[ceil(percent / 100 * n) - 1].

    Nearest rank always returns an observed delay (no interpolation between two answers), and the p99 of
    fewer than 100 answers is their maximum: on a slow day with few answers the worst one shows.
    """
    if not values:
        raise ValueError("no values")
    if not 0 < percent <= 100:
        raise ValueError(f"percent must be in (0, 100], not {percent}")
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)  # ceil, in integers so 99 % of 100 is exactly rank 99
    return ordered[rank - 1]


@dataclass(frozen=True)
class Answer:
    """One agency's answer to a court act: when each was first recorded by the broker."""

    agency: str
    answered_at: dt.datetime
    court_at: dt.datetime


def answers(court: Iterable[Recorded], feedback: Iterable[Recorded]) -> list[Answer]:
    """Each feedback record that answers a court act in `court`, with both record times.

    Both are record times, because an agency can act only once the hub has published the act. A court act
    or a feedback published twice counts once, at its first record (`first_records`), so a republication
    neither adds an answer nor restarts the clock. Interceptions answer no court act and are left out, as
    is feedback whose court act is not in `court` (nothing to measure from). The desk finds the same answers
    with one query over the ledger's columns (hub/web/sources.py); a test holds the two equal.
    """
    published = {r.event.event_id: r.recorded_at for r in first_records(court)}
    out = []
    for r in first_records(feedback):
        event = r.event
        if not isinstance(event, FeedbackEvent) or event.event_type in _NOT_ANSWERS or event.court_event_id is None:
            continue
        court_at = published.get(event.court_event_id)
        if court_at is not None:
            out.append(Answer(event.agency, r.recorded_at, court_at))
    return out


def window_start(zone: ZoneInfo, days: int, *, until: dt.datetime) -> dt.datetime:
    """The first instant of `daily_delays`' window: midnight in `zone` of its first day."""
    first = _local_date(until, zone, "until") - dt.timedelta(days=days - 1)
    return dt.datetime.combine(first, dt.time(), zone)


def daily_delays(
    found: Iterable[Answer],
    zone: ZoneInfo,
    days: int = 14,
    *,
    until: dt.datetime,
    starts: Mapping[str, dt.datetime | None] | None = None,
) -> DailyDelays:
    """How long each agency took to answer court acts, per calendar day (in `zone`) of its answer.

    The delay is the answer's record time minus the time the agency could first know of the act, in seconds,
    clamped at 0 (clocks of different partitions may disagree slightly). That is the court act's record, or
    the agency's start when that is later (`starts`: HUB_AGENCY_SINCE, else its first feedback, as
    `Deadlines.agency_start` gives it): as for its deadlines, an agency that joins answers years of history
    at its own speed, which is what the chart shows, not the years.

    Per agency and day: the median (statistics.median: the mean of the two middle delays for an even count),
    the 99th percentile by nearest rank (see `nearest_rank`) and the number of answers; a day without
    answers has None for both figures. The window is the `days` days ending on the day of `until`.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    last = _local_date(until, zone, "until")
    window = [last - dt.timedelta(days=days - 1 - i) for i in range(days)]
    index = {day: i for i, day in enumerate(window)}
    delays: dict[str, list[list[float]]] = {}
    starts = starts or {}
    for a in found:
        i = index.get(_local_date(a.answered_at, zone, "recorded_at"))
        if i is None:
            continue
        start = starts.get(a.agency)
        known = a.court_at if start is None else max(a.court_at, start)
        delay = max(0.0, (a.answered_at - known).total_seconds())
        delays.setdefault(a.agency, [[] for _ in window])[i].append(delay)
    agencies = sorted(delays)
    return DailyDelays(
        days=window,
        agencies=agencies,
        median={a: [statistics.median(d) if d else None for d in delays[a]] for a in agencies},
        p99={a: [nearest_rank(d, 99) if d else None for d in delays[a]] for a in agencies},
        count={a: [len(d) for d in delays[a]] for a in agencies},
    )


def feedback_delays(
    court: Iterable[Recorded],
    feedback: Iterable[Recorded],
    zone: ZoneInfo,
    days: int = 14,
    *,
    until: dt.datetime,
    starts: Mapping[str, dt.datetime | None] | None = None,
) -> DailyDelays:
    """`daily_delays` of the `answers` in these records."""
    return daily_delays(answers(court, feedback), zone, days, until=until, starts=starts)
