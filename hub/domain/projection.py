"""The compliance report as a projection: the ledger judged one component at a time, each valid until a horizon.

Judging a ledger of a million events takes minutes, yet a breach depends only on the records of one entry and
of the entries those records name: an agency's answer to another entry's act, a block naming several entries,
an event id reused under another entry. Records linked that way form a component; judged alone, with each
agency's start given (it is the only thing the rules take from the whole ledger), a component has exactly the
breaches the whole ledger's judgement has for it (tests/unit/test_projection.py checks this against
`hub.domain.rules.judge`). So a component is judged again only when a record joins it or its horizon passes,
and the report is the union of the stored judgements (hub/ledger/projection.py keeps them at the ledger's
sequence numbers).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from hub.domain.history import entry_states
from hub.domain.lifecycle import Recorded
from hub.domain.rules import Deadlines, Violation, judge_until


@dataclass(frozen=True)
class Judgement:
    """One component judged as of `as_of`: its breaches and entry states hold until `horizon` (None: until a new
    record joins it)."""

    entries: dict[str, str | None]  # every entry of the component, with its state (None: not listed or warned)
    violations: list[Violation]
    as_of: dt.datetime
    horizon: dt.datetime | None
    imported: int  # distinct court event ids loaded as a historical import

    def holds_at(self, moment: dt.datetime) -> bool:
        return self.as_of <= moment and (self.horizon is None or moment < self.horizon)


@dataclass(frozen=True)
class Link:
    """What of a record links entries, and starts an agency's deadlines: read off a stored row's columns
    without decoding its event (hub/ledger/projection.py), or taken from a record (`link`)."""

    position: int
    event_id: str
    family: str
    entry_id: str
    court_event_id: str | None  # the court act a feedback record answers
    agency: str | None
    recorded_at: dt.datetime
    entry_ids: tuple[str, ...] = ()  # a block's entries

    @property
    def named(self) -> set[str]:
        """The entries the record itself names: its own, and a block's others."""
        return {self.entry_id, *self.entry_ids}


def link(r: Recorded) -> Link:
    event = r.event
    return Link(
        r.position,
        event.event_id,
        event.family,
        event.entry_id,  # type: ignore[attr-defined]
        getattr(event, "court_event_id", None),
        getattr(event, "agency", None),
        r.recorded_at,
        tuple(getattr(event, "entry_ids", ())),
    )


class Components:
    """Union-find over entry ids: entries whose records name each other, or share an event id, are one."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, entry: str) -> str:
        root = self.parent.setdefault(entry, entry)
        while root != self.parent[root]:
            root = self.parent[root]
        while entry != root:
            self.parent[entry], entry = root, self.parent[entry]
        return root

    def union(self, entries: Iterable[str]) -> None:
        roots = sorted({self.find(e) for e in entries})
        for other in roots[1:]:
            self.parent[other] = roots[0]  # the smallest entry id names the component: deterministic

    def add(self, links: Iterable[Link], earlier: Iterable[tuple[str, str]] = ()) -> None:
        """Link every record with the entries it names, the entry of the act it answers, and its event id's.
        `earlier`: (event id, entry) of records not among `links` that they may name (acts they answer, their
        own event ids), so that a few new records can be linked with what is stored."""
        links = list(links)
        by_event: dict[str, set[str]] = {}
        for event_id, entry in [*earlier, *((x.event_id, x.entry_id) for x in links)]:
            by_event.setdefault(event_id, set()).add(entry)
        for x in links:
            self.union(x.named | by_event.get(x.court_event_id or "", set()))
        for entries in by_event.values():
            self.union(entries)

    def groups(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for entry in self.parent:
            out.setdefault(self.find(entry), set()).add(entry)
        return out


def first_feedback(links: Iterable[Link], seen_before: Collection[str] = ()) -> dict[str, dt.datetime]:
    """Each agency's first feedback record: where the rules start its deadlines when HUB_AGENCY_SINCE is silent.
    A feedback event id counts once, at its first record (`seen_before`: feedback ids recorded earlier)."""
    first: dict[str, dt.datetime] = {}
    seen = set(seen_before)
    for x in sorted((x for x in links if x.family == "feedback"), key=lambda x: x.position):
        if x.event_id in seen:
            continue
        seen.add(x.event_id)
        if x.agency not in first or x.recorded_at < first[x.agency]:  # type: ignore[index]
            first[x.agency] = x.recorded_at  # type: ignore[index]
    return first


def earliest(*maps: Mapping[str, dt.datetime]) -> dict[str, dt.datetime]:
    out: dict[str, dt.datetime] = {}
    for m in maps:
        for agency, moment in m.items():
            out[agency] = min(moment, out.get(agency, moment))
    return out


def with_starts(deadlines: Deadlines, first: Mapping[str, dt.datetime]) -> Deadlines:
    """The deadlines with every agency's start fixed, as the whole ledger's judgement would find it."""
    starts = {a: deadlines.agency_since.get(a) or moment for a, moment in first.items()}
    return dataclasses.replace(deadlines, agency_since={**starts, **deadlines.agency_since})


def judge_component(
    court: list[Recorded],
    feedback: list[Recorded],
    as_of: dt.datetime,
    deadlines: Deadlines,
    agencies: Iterable[str],
) -> Judgement:
    """`deadlines` must carry every agency's start (`with_starts`), `agencies` every agency of the ledger."""
    violations, horizon = judge_until(court, feedback, as_of, deadlines, agencies)
    states = entry_states(court, as_of, as_of)
    names = {e for r in court + feedback for e in link(r).named}
    return Judgement(
        entries={e: states[e]["state"] if e in states else None for e in sorted(names)},
        violations=violations,
        as_of=as_of,
        horizon=horizon,
        imported=len({r.event.event_id for r in court if r.historical}),
    )


def split(court: Iterable[Recorded], feedback: Iterable[Recorded]) -> dict[str, tuple[list[Recorded], list[Recorded]]]:
    """The records by component, named by its smallest entry id."""
    court, feedback = list(court), list(feedback)
    components = Components()
    components.add(link(r) for r in court + feedback)
    out: dict[str, tuple[list[Recorded], list[Recorded]]] = {}
    for family, records in ((0, court), (1, feedback)):
        for r in records:
            out.setdefault(components.find(r.event.entry_id), ([], []))[family].append(r)  # type: ignore[attr-defined]
    return out
