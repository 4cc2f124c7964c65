"""The compliance report's projection in the ledger's database (the pure part: hub/domain/projection.py).

The ledger keeps it: at each tick it judges again the components that rows past `report_head.upto_seq` joined,
or whose horizon passed, in the same transaction as the rest of its tick. `hub ledger report --as-of now` reads
it as the auditor, who writes nothing: it judges the rows the ledger has not projected yet, and the components
whose horizon has passed since, in memory, and takes every other judgement as stored. Whatever the projection
cannot answer (an instant before its last judgement, other deadline settings, an agency's start moved) goes to
the whole judgement of the ledger, which is always right, only slower.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from hub.config import Settings
from hub.domain.events import parse_event
from hub.domain.history import canonical_json, digest
from hub.domain.lifecycle import Recorded
from hub.domain.projection import (
    Components,
    Judgement,
    answered_event,
    earliest,
    first_feedback,
    judge_component,
    linked_entries,
    with_starts,
)
from hub.domain.rules import Deadlines, Violation

CHUNK_ROWS = 5_000  # rows a tick projects at most, so a bulk import does not stall the ledger's consuming
_ROW = "seq, family, recorded_at, historical, body"


def fingerprint(settings: Settings) -> str:
    """What the judgements depend on besides the rows: another deadline setting makes them all stale."""
    d = settings.deadlines()
    c = d.calendar
    return digest(
        {
            "calendar": [c.time_zone, sorted(map(str, c.extra_holidays)), sorted(map(str, c.extra_working_days))],
            "holidays": importlib.metadata.version("holidays"),
            "periods": [repr(p) for p in (d.correction_request, d.review, d.revoke, d.shield, d.period_grace)]
            + [repr(d.publication)],
            "agency_hours": d.agency_hours,
            "agency_since": {a: t.isoformat() for a, t in sorted(d.agency_since.items())},
            "retention": d.max_retention_days,
            "tolerance": d.check_tolerance.total_seconds(),
            "agencies": sorted(settings.agencies),
        }
    )


@dataclass
class Head:
    upto_seq: int
    judged_at: dt.datetime
    fingerprint: str
    first_feedback: dict[str, dt.datetime]
    courts: set[str]


@dataclass
class Update:
    """A step of the projection: the components judged again, and the names that merged into others."""

    upto_seq: int
    as_of: dt.datetime
    first_feedback: dict[str, dt.datetime]
    courts: set[str]
    judged: dict[str, Judgement] = field(default_factory=dict)
    merged_away: set[str] = field(default_factory=set)

    @property
    def entries(self) -> set[str]:
        return {e for j in self.judged.values() for e in j.entries}


class Stale(Exception):
    """The stored judgements were made with another agency start: only judging everything again is right."""


def _record(row) -> Recorded:
    return Recorded(parse_event(json.loads(row.body), row.family), row.recorded_at, row.seq, row.historical)


def _violation(v: dict[str, str]) -> Violation:
    return Violation(v["rule"], v["party"], v["entry_id"], dt.datetime.fromisoformat(v["due_at"]), v["detail"])


class ReportProjection:
    def __init__(self, settings: Settings):
        self.name = settings.ledger_name
        self.agencies = list(settings.agencies)
        self.deadlines: Deadlines = settings.deadlines()
        self.fingerprint = fingerprint(settings)

    # -- reading ---------------------------------------------------------------------------------------

    def head(self, conn: Connection) -> Head | None:
        row = conn.execute(text("select * from report_head where ledger = :l"), {"l": self.name}).one_or_none()
        if row is None:
            return None
        first = {a: dt.datetime.fromisoformat(t) for a, t in json.loads(row.first_feedback).items()}
        return Head(row.upto_seq, row.judged_at, row.fingerprint, first, set(json.loads(row.courts)))

    def advance(self, conn: Connection, head: Head, as_of: dt.datetime, upto_seq: int) -> Update:
        """Judge again, as of `as_of`, what rows `head.upto_seq` < seq <= `upto_seq` joined and what expired;
        reads only. Raises Stale when an agency's start would move."""
        tail = [
            _record(r)
            for r in conn.execute(
                text(f"select {_ROW} from ledger_events where seq > :a and seq <= :b order by seq"),
                {"a": head.upto_seq, "b": upto_seq},
            )
        ]
        earlier = self._earlier_entries(conn, tail, head.upto_seq)
        seen_before = {event_id for event_id, _entry in earlier["same_id"]}
        first = earliest(
            head.first_feedback,
            first_feedback(r for r in tail if r.event.family == "feedback" and r.event.event_id not in seen_before),
        )
        if (
            with_starts(self.deadlines, first).agency_since
            != with_starts(self.deadlines, head.first_feedback).agency_since
        ):
            raise Stale("an agency's first feedback moved")
        courts = head.courts | {r.event.court_code for r in tail if r.event.family == "court"}  # type: ignore[attr-defined]
        update = Update(upto_seq, as_of, first, courts)

        components = Components()
        stored = self._members(
            conn,
            "entry_id",
            {e for r in tail for e in linked_entries(r)} | {e for _i, e in earlier["answered"] + earlier["same_id"]},
        )
        expired = [
            c
            for (c,) in conn.execute(text("select component from report_components where horizon <= :t"), {"t": as_of})
        ]
        stored.update(self._members(conn, "component", set(stored.values()) | set(expired)))
        by_component: dict[str, set[str]] = {}
        for entry, component in stored.items():
            by_component.setdefault(component, set()).add(entry)
        for members in by_component.values():
            components.union(members)
        tail_court = {r.event.event_id: r.event.entry_id for r in tail if r.event.family == "court"}  # type: ignore[attr-defined]
        answered = dict(earlier["answered"]) | tail_court
        same_id: dict[str, set[str]] = {}
        for event_id, entry in earlier["same_id"] + [(r.event.event_id, r.event.entry_id) for r in tail]:  # type: ignore[attr-defined]
            same_id.setdefault(event_id, set()).add(entry)
        for r in tail:
            components.union(linked_entries(r) | {answered[a] for a in [answered_event(r)] if a in answered})
        for entries in same_id.values():
            components.union(entries)
        groups = components.groups()
        update.merged_away = set(by_component) - set(groups)
        entries = sorted({e for members in groups.values() for e in members})
        court: dict[str, list[Recorded]] = {}
        feedback: dict[str, list[Recorded]] = {}
        for chunk in range(0, len(entries), 10_000):
            for row in conn.execute(
                text(f"select {_ROW} from ledger_events where entry_id = any(:e) and seq <= :b"),
                {"e": entries[chunk : chunk + 10_000], "b": upto_seq},
            ):
                r = _record(row)
                family = court if r.event.family == "court" else feedback
                family.setdefault(components.find(r.event.entry_id), []).append(r)  # type: ignore[attr-defined]
        deadlines = with_starts(self.deadlines, first)
        agencies = sorted({*self.agencies, *first})
        for name in groups:
            update.judged[name] = judge_component(
                court.get(name, []), feedback.get(name, []), as_of, deadlines, agencies
            )
        return update

    def _earlier_entries(self, conn: Connection, tail: list[Recorded], upto: int) -> dict[str, list[tuple[str, str]]]:
        """(event id, entry) of projected rows the tail links to: the acts it answers, and its own event ids."""
        answers = sorted({a for r in tail if (a := answered_event(r))})
        ids = sorted({r.event.event_id for r in tail})
        query = (
            "select event_id::text, entry_id from ledger_events where event_id = any(cast(:ids as uuid[])) "
            "and seq <= :u"
        )
        found: dict[str, list[tuple[str, str]]] = {"answered": [], "same_id": []}
        for key, wanted, extra in (("answered", answers, " and family = 'court'"), ("same_id", ids, "")):
            if wanted:
                found[key] = [tuple(r) for r in conn.execute(text(query + extra), {"ids": wanted, "u": upto})]  # type: ignore[misc]
        return found

    @staticmethod
    def _members(conn: Connection, column: str, keys: Iterable[str]) -> dict[str, str]:
        keys = sorted(keys)
        out: dict[str, str] = {}
        for chunk in range(0, len(keys), 10_000):
            out.update(
                conn.execute(
                    text(f"select entry_id, component from report_entries where {column} = any(:k)"),
                    {"k": keys[chunk : chunk + 10_000]},
                ).all()
            )
        return out

    def stored(self, conn: Connection, update: Update) -> tuple[list[Violation], dict[str, str | None], int]:
        """The stored judgements that `update` leaves as they are: violations, entry states, imported count."""
        fresh = set(update.judged) | update.merged_away
        violations: list[Violation] = []
        imported = 0
        for component, body, count in conn.execute(
            text("select component, violations, imported from report_components").execution_options(
                stream_results=True, yield_per=20_000
            )
        ):
            if component not in fresh:
                imported += count
                if body != "[]":
                    violations.extend(_violation(v) for v in json.loads(body))
        entries = update.entries
        states = {
            e: s
            for e, s in conn.execute(
                text("select entry_id, state from report_entries where state is not null").execution_options(
                    stream_results=True, yield_per=50_000
                )
            )
            if e not in entries
        }
        return violations, states, imported

    # -- writing (the ledger, at its tick) -------------------------------------------------------------

    def catch_up(self, conn: Connection, now: dt.datetime, final: bool = False) -> int:
        """Project up to CHUNK_ROWS more rows (all of them when `final`); returns the rows projected."""
        last = conn.execute(text("select coalesce(max(seq), 0) from ledger_events")).scalar_one()
        done = 0
        while True:
            head = self.head(conn)
            if head is None or head.fingerprint != self.fingerprint:
                head = self._reset(conn, now)
            upto = min(last, head.upto_seq + CHUNK_ROWS)
            if upto == head.upto_seq and not self._expired(conn, now):
                return done
            try:
                update = self.advance(conn, head, now, upto)
            except Stale:
                self._reset(conn, now)
                continue
            self._store(conn, update)
            done += upto - head.upto_seq
            if not final or upto == last:
                return done

    def _expired(self, conn: Connection, now: dt.datetime) -> bool:
        return conn.execute(
            text("select exists (select 1 from report_components where horizon <= :t)"), {"t": now}
        ).scalar_one()

    def _reset(self, conn: Connection, now: dt.datetime) -> Head:
        """Start again from the first row, with every agency's start taken from the whole ledger at once."""
        conn.execute(text("delete from report_components"))
        conn.execute(text("delete from report_entries"))
        first: dict[str, dt.datetime] = {}
        for agency, moment in conn.execute(
            text(
                "select agency, min(recorded_at) from (select distinct on (event_id) family, agency, recorded_at "
                "from ledger_events order by event_id, seq) f where family = 'feedback' group by agency"
            )
        ):
            first[agency] = moment
        head = Head(0, now, self.fingerprint, first, set())
        conn.execute(
            text(
                "insert into report_head values (:l, 0, :t, :f, :ff, '[]') on conflict (ledger) do update set "
                "upto_seq = 0, judged_at = :t, fingerprint = :f, first_feedback = :ff, courts = '[]'"
            ),
            {"l": self.name, "t": now, "f": self.fingerprint, "ff": _instants(first)},
        )
        return head

    def _store(self, conn: Connection, update: Update) -> None:
        gone = sorted(update.merged_away | set(update.judged))
        conn.execute(text("delete from report_components where component = any(:c)"), {"c": gone})
        conn.execute(text("delete from report_entries where entry_id = any(:e)"), {"e": sorted(update.entries)})
        entries = [
            {"e": e, "c": name, "s": state} for name, j in update.judged.items() for e, state in j.entries.items()
        ]
        if entries:
            conn.execute(text("insert into report_entries values (:e, :c, :s)"), entries)
        components = [
            {
                "c": name,
                "t": j.as_of,
                "h": j.horizon,
                "i": j.imported,
                "v": canonical_json([v.as_dict() for v in j.violations]),
            }
            for name, j in update.judged.items()
        ]
        if components:
            conn.execute(text("insert into report_components values (:c, :t, :h, :i, :v)"), components)
        conn.execute(
            text(
                "update report_head set upto_seq = :u, judged_at = :t, first_feedback = :ff, courts = :courts "
                "where ledger = :l"
            ),
            {
                "u": update.upto_seq,
                "t": update.as_of,
                "ff": _instants(update.first_feedback),
                "courts": json.dumps(sorted(update.courts)),
                "l": self.name,
            },
        )


def _instants(first: dict[str, dt.datetime]) -> str:
    return json.dumps({a: t.isoformat() for a, t in sorted(first.items())})
