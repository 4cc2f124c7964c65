"""`hub ledger report`: the breaches as of an instant, from the ledger's own store."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from hub.config import Settings
from hub.db import migrated
from hub.domain.history import entry_states
from hub.domain.rules import Violation, judge, ordered
from hub.domain.times import iso
from hub.ledger.projection import ReportProjection, Stale
from hub.ledger.service import history, last_seq, read_database


@dataclass
class Report:
    """Times are given in the courts' zone (`zone`), with their offset."""

    as_of: dt.datetime
    violations: list[Violation]
    entries: dict[str, int]
    zone: ZoneInfo
    imported: int = 0  # court events loaded as a historical import
    projected: bool = False  # from the ledger's projection, not the whole history judged at once

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": iso(self.as_of, self.zone),
            "time_zone": str(self.zone),
            "violations": [{**v.as_dict(), "due_at": iso(v.due_at, self.zone)} for v in self.violations],
            "summary": {
                "entries": self.entries,
                "court_events_imported_as_history": self.imported,
                "violations_by_rule": dict(sorted(Counter(v.rule for v in self.violations).items())),
                "violations_by_party": dict(sorted(Counter(v.party for v in self.violations).items())),
            },
        }

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["rule", "party", "entry_id", "due_at", "detail"])
        for v in self.violations:
            writer.writerow([v.rule, v.party, v.entry_id, iso(v.due_at, self.zone), v.detail])
        return out.getvalue()


class UnknownParty(ValueError):
    """`--party` names no court or agency of this ledger."""


def known_party(name: str, agencies: Iterable[str], courts: Iterable[str]) -> str:
    """`agency:bank`, `court:J0105`, or the bare `bank` / `J0105` for them; anything else is refused with the
    list, since a misspelt party would otherwise report no breach at all."""
    parties = {f"agency:{a}" for a in agencies} | {f"court:{c}" for c in courts}
    for candidate in (name, f"agency:{name}", f"court:{name}"):
        if candidate in parties:
            return candidate
    raise UnknownParty(f"no party {name!r} in this ledger; parties: {', '.join(sorted(parties))}")


def build_report(
    settings: Settings,
    as_of: dt.datetime | None = None,
    party: str | None = None,
    rule: str | None = None,
    projection: bool = True,
) -> Report:
    """From the ledger's projection (hub/ledger/projection.py) when it can answer for `as_of`, else (or with
    `projection` off) from the whole history judged at once: the same report either way, the first in seconds
    over millions of events."""
    as_of = as_of or dt.datetime.now(dt.UTC)
    db = read_database(settings)
    with migrated("ledger", "the report reads the ledger as the auditor, who makes nothing"), db.connect() as conn:
        found = projected(conn, settings, as_of) if projection else None
        if found is None:
            court, feedback = history(conn)
    db.dispose()
    if found is not None:
        violations, states, imported, courts = found
    else:
        violations = judge(court, feedback, as_of, settings.deadlines(), settings.agencies)
        states = Counter(e["state"] for e in entry_states(court, as_of, as_of).values())
        imported = len({r.event.event_id for r in court if r.historical})
        courts = {r.event.court_code for r in court}  # type: ignore[attr-defined]
    if party:
        party = known_party(party, settings.agencies, courts)
        violations = [v for v in violations if v.party == party]
    if rule:
        violations = [v for v in violations if v.rule == rule]
    return Report(as_of, violations, dict(sorted(states.items())), settings.zone, imported, found is not None)


def projected(
    conn: Connection, settings: Settings, as_of: dt.datetime
) -> tuple[list[Violation], Counter[str], int, set[str]] | None:
    """The breaches as of `as_of` from the projection, with the entries' states, the court events imported as
    history and the courts seen; None when the projection cannot answer for `as_of` (the whole judgement can)."""
    projection = ReportProjection(settings)
    head = projection.head(conn)
    if head is None or head.fingerprint != projection.fingerprint or as_of < head.judged_at:
        return None
    last = last_seq(conn)
    try:
        update = projection.advance(conn, head, as_of, last)
    except Stale:
        return None
    violations, states, imported = projection.stored(conn, update)
    for judged in update.judged.values():
        violations.extend(judged.violations)
        states.update(judged.entries)
        imported += judged.imported
    return ordered(violations), Counter(s for s in states.values() if s is not None), imported, update.courts
