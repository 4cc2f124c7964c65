"""The compliance report's projection in the ledger's database (the pure part: hub/domain/projection.py).

`hub ledger project`, which `hub ledger run` starts beside itself, keeps it: each step judges again the
components that rows past `report_head.upto_seq` joined, or whose horizon passed, and stores them with the new
`upto_seq` in one transaction; the ledger takes the last step itself when it stops. `hub ledger report --as-of
now` reads it as the auditor, who writes nothing: it takes the same step in memory and every other judgement
as stored. Whatever the projection cannot answer (an instant before its last judgement, other deadline
settings, an agency's start moved) goes to the whole judgement of the ledger, which is always right, only
slower.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from hub.config import Settings
from hub.domain.history import canonical_json, digest
from hub.domain.lifecycle import Recorded
from hub.domain.projection import (
    Components,
    Judgement,
    Link,
    earliest,
    first_feedback,
    judge_component,
    with_starts,
)
from hub.domain.rules import Deadlines, Violation
from hub.domain.wire import event_from_record
from hub.log import get_logger

log = get_logger("hub.ledger.projection")
PROJECT_SECONDS = 5.0  # how often the projector looks for new rows and passed horizons
CHUNK_ROWS = 200_000  # rows one transaction projects at most (their links are held in memory, not their events)
_ROW = "seq, family, entry_id, recorded_at, historical, body"


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
    loaded: int = 0  # rows read back to judge them
    components: int = 0  # components judged

    @property
    def entries(self) -> set[str]:
        return {e for j in self.judged.values() for e in j.entries}


class Stale(Exception):
    """The stored judgements were made with another agency start: only judging everything again is right."""


def _record(row) -> Recorded:
    """A stored row passed the ledger's checks when it came in: the lean path rebuilds it (hub/domain/wire.py)."""
    return Recorded(event_from_record(json.loads(row.body), row.family), row.recorded_at, row.seq, row.historical)


def _violation(v: dict[str, str]) -> Violation:
    return Violation(v["rule"], v["party"], v["entry_id"], dt.datetime.fromisoformat(v["due_at"]), v["detail"])


class ReportProjection:
    def __init__(self, settings: Settings):
        self.name = settings.ledger_name
        self.agencies = list(settings.agencies)
        self.deadlines: Deadlines = settings.deadlines()
        self.fingerprint = fingerprint(settings)

    # -- reading ---------------------------------------------------------------------------------------

    def head(self, conn: Connection, lock: bool = False) -> Head | None:
        """`lock`: a writer's, so that two ledgers started by mistake do not project over each other."""
        query = "select * from report_head where ledger = :l" + (" for update" if lock else "")
        row = conn.execute(text(query), {"l": self.name}).one_or_none()
        if row is None:
            return None
        first = {a: dt.datetime.fromisoformat(t) for a, t in json.loads(row.first_feedback).items()}
        return Head(row.upto_seq, row.judged_at, row.fingerprint, first, set(json.loads(row.courts)))

    def advance(
        self,
        conn: Connection,
        head: Head,
        as_of: dt.datetime,
        upto_seq: int,
        sink: Callable[[dict[str, Judgement]], None] | None = None,
    ) -> Update:
        """Judge again, as of `as_of`, the components that rows `head.upto_seq` < seq <= `upto_seq` joined and
        those whose horizon passed, handing them to `sink` a batch at a time (else keeping them in the update);
        reads only. The links come from the rows' columns, so a row is decoded only to be judged, once per
        advance. Raises Stale when an agency's start would move."""
        tail = [
            Link(
                r.seq,
                r.event_id,
                r.family,
                r.entry_id,
                r.court_event_id,
                r.agency,
                r.recorded_at,
                tuple(r.entry_ids or ()),
            )
            for r in conn.execute(
                text(
                    "select seq, family, event_id::text as event_id, entry_id, court_event_id, agency, recorded_at, "
                    "case when event_type = 'InterceptionRecorded' then body::jsonb -> 'entry_ids' end as entry_ids "
                    "from ledger_events where seq > :a and seq <= :b"
                ),
                {"a": head.upto_seq, "b": upto_seq},
            )
        ]
        answered, same_id = self._earlier(conn, tail, head.upto_seq)
        first = earliest(
            head.first_feedback, first_feedback(tail, {i for i, _e, family in same_id if family == "feedback"})
        )
        if (
            with_starts(self.deadlines, first).agency_since
            != with_starts(self.deadlines, head.first_feedback).agency_since
        ):
            raise Stale("an agency's first feedback moved")
        update = Update(upto_seq, as_of, first, set(head.courts))
        components, groups, update.merged_away = self._link(
            conn, tail, answered + [(i, e) for i, e, _f in same_id], as_of
        )
        names = sorted(groups)
        for start in range(0, len(names), 5_000):
            judged = self._judge(conn, names[start : start + 5_000], groups, components, update)
            sink(judged) if sink else update.judged.update(judged)
        return update

    def _link(
        self, conn: Connection, tail: list[Link], earlier: list[tuple[str, str]], as_of: dt.datetime
    ) -> tuple[Components, dict[str, set[str]], set[str]]:
        """The components the tail touches, or whose horizon passed, with their stored members and by name; and
        the stored components that merged into others."""
        named = {e for x in tail for e in x.named} | {e for _i, e in earlier}
        stored = self._members(conn, "entry_id", named)
        expired = conn.execute(text("select component from report_components where horizon <= :t"), {"t": as_of})
        stored.update(self._members(conn, "component", set(stored.values()) | {c for (c,) in expired}))
        components = Components()
        by_component: dict[str, set[str]] = {}
        for entry, component in stored.items():
            by_component.setdefault(component, set()).add(entry)
        for members in by_component.values():
            components.union(members)
        components.add(tail, earlier)
        groups = components.groups()
        return components, groups, set(by_component) - set(groups)

    def _judge(
        self, conn: Connection, names: list[str], groups: dict[str, set[str]], components: Components, update: Update
    ) -> dict[str, Judgement]:
        """Some components, from all their rows up to the update's."""
        entries = sorted(e for name in names for e in groups[name])
        court: dict[str, list[Recorded]] = {}
        feedback: dict[str, list[Recorded]] = {}
        for row in conn.execute(
            text(f"select {_ROW} from ledger_events where entry_id = any(:e) and seq <= :b"),
            {"e": entries, "b": update.upto_seq},
        ):
            r = _record(row)
            update.loaded += 1
            if row.family == "court":
                update.courts.add(r.event.court_code)  # type: ignore[attr-defined]
            family = court if row.family == "court" else feedback
            family.setdefault(components.find(row.entry_id), []).append(r)
        update.components += len(names)
        deadlines = with_starts(self.deadlines, update.first_feedback)
        agencies = sorted({*self.agencies, *update.first_feedback})
        return {
            name: judge_component(court.get(name, []), feedback.get(name, []), update.as_of, deadlines, agencies)
            for name in names
        }

    def _earlier(
        self, conn: Connection, tail: list[Link], upto: int
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
        """Of the rows projected already, those the tail links to: (event id, entry) of the court acts it
        answers, and (event id, entry, family) of its own event ids."""
        query = (
            "select event_id::text, entry_id, family from ledger_events where event_id = any(cast(:ids as uuid[])) "
            "and seq <= :u"
        )
        answers = sorted({x.court_event_id for x in tail if x.court_event_id})
        ids = sorted({x.event_id for x in tail})
        answered = conn.execute(text(query + " and family = 'court'"), {"ids": answers, "u": upto}) if answers else []
        same_id = conn.execute(text(query), {"ids": ids, "u": upto}) if ids else []
        return [(i, e) for i, e, _f in answered], [(i, e, f) for i, e, f in same_id]

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

    # -- writing (`hub ledger project`, and the ledger when it stops) ----------------------------------

    def catch_up(self, conn: Connection, now: dt.datetime, final: bool = False) -> int:
        """Project up to CHUNK_ROWS more rows (all of them when `final`), and judge again what expired;
        returns the rows projected."""
        last = conn.execute(text("select coalesce(max(seq), 0) from ledger_events")).scalar_one()
        done = 0
        while True:
            head = self.head(conn, lock=True)
            if head is None or head.fingerprint != self.fingerprint:
                why = "first projection" if head is None else "other deadline settings"
                head = self._reset(conn, now, why)
            upto = min(last, head.upto_seq + CHUNK_ROWS)
            if upto == head.upto_seq and not self._expired(conn, now):
                return done
            started = time.perf_counter()
            try:
                update = self.advance(conn, head, now, upto, lambda batch: self._store(conn, batch))
            except Stale as exc:
                self._reset(conn, now, str(exc))
                continue
            self._finish(conn, update)
            done += upto - head.upto_seq
            log.info(
                "report projected",
                upto_seq=upto,
                rows=upto - head.upto_seq,
                components=update.components,
                rows_judged=update.loaded,
                seconds=round(time.perf_counter() - started, 3),
            )
            if not final or upto == last:
                return done

    def _expired(self, conn: Connection, now: dt.datetime) -> bool:
        return conn.execute(
            text("select exists (select 1 from report_components where horizon <= :t)"), {"t": now}
        ).scalar_one()

    def _reset(self, conn: Connection, now: dt.datetime, why: str) -> Head:
        """Start again from the first row, with every agency's start taken from the whole ledger at once."""
        log.info("report projection started from the first row", reason=why)
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

    def _store(self, conn: Connection, judged: dict[str, Judgement]) -> None:
        conn.execute(text("delete from report_components where component = any(:c)"), {"c": sorted(judged)})
        entries = [{"e": e, "c": name, "s": state} for name, j in judged.items() for e, state in j.entries.items()]
        conn.execute(text("delete from report_entries where entry_id = any(:e)"), {"e": [e["e"] for e in entries]})
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
            for name, j in judged.items()
        ]
        if components:
            conn.execute(text("insert into report_components values (:c, :t, :h, :i, :v)"), components)

    def _finish(self, conn: Connection, update: Update) -> None:
        conn.execute(text("delete from report_components where component = any(:c)"), {"c": sorted(update.merged_away)})
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


def follow(
    projection: ReportProjection,
    db: Engine,
    stop: threading.Event,
    parent: int | None = None,
) -> None:
    """Keep the projection up to date until `stop` (or, with `parent`, until that process is gone): a round
    projects what arrived since the last, then waits PROJECT_SECONDS unless more is waiting."""
    while not stop.is_set() and (parent is None or os.getppid() == parent):
        try:
            with db.begin() as conn:
                projected = projection.catch_up(conn, dt.datetime.now(dt.UTC))
        except Exception as exc:  # the database away, most likely: the next round tries again
            log.warning("report projection not advanced; retrying", error=str(exc).strip()[:300])
            projected = 0
        if projected < CHUNK_ROWS:
            stop.wait(PROJECT_SECONDS)
