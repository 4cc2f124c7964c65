"""Bitemporal reconstruction of what was in force (docs/design.md §9), shared by the audit and the ledger.

Two times: `as_of` is legal time (the events' own `occurred_at`: what was in force at T), `known_at` is
record time (the broker's timestamps: what the hub had been told by K). A shielding published five
days late is therefore SHIELDED as of its decision, yet ACTIVE as known on the days in between.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from hub.domain.events import CourtEvent, FeedbackEvent
from hub.domain.lifecycle import Recorded, lives

__all__ = ["Recorded", "agency_sanctions", "by_agency", "digest", "entry_states", "first_records"]


def _visible(records: Iterable[Recorded], as_of: dt.datetime, known_at: dt.datetime) -> list[Recorded]:
    chosen = [r for r in records if r.recorded_at <= known_at and r.event.occurred_at <= as_of]
    chosen.sort(key=lambda r: (r.event.occurred_at, r.position))
    return chosen


def first_records(records: Iterable[Recorded]) -> list[Recorded]:
    """A republished event (same event_id) counts once: its first record."""
    seen: set[str] = set()
    out = []
    for r in sorted(records, key=lambda r: r.position):
        if r.event.event_id not in seen:
            seen.add(r.event.event_id)
            out.append(r)
    return out


def entry_states(court: Iterable[Recorded], as_of: dt.datetime, known_at: dt.datetime) -> dict[str, dict[str, Any]]:
    """Every entry the courts had warned about or listed, with its state at (as_of, known_at)."""
    entries: dict[str, dict[str, Any]] = {}
    for entry_id, life in lives(_visible(first_records(court), as_of, known_at)).items():
        if life.state is None:
            continue
        first: CourtEvent = life.accepted[0].item.event  # type: ignore[assignment]
        view: dict[str, Any] = {
            "debtor_id": first.debtor.id_number,
            "debtor_kind": first.debtor.kind,
            "court_code": first.court_code,
            "case_number": first.case_number,
            "state": life.state.value,
            "since": life.since.isoformat() if life.since else None,
        }
        included = life.first("Included")
        if included is not None:
            view["disclosure"] = included.event.disclosure  # type: ignore[attr-defined]
        entries[entry_id] = view
    return entries


def sanction_supports(
    feedback: Iterable[Recorded], as_of: dt.datetime, known_at: dt.datetime
) -> set[tuple[str, str, str]]:
    """(agency, subject, measure) that some entry's feedback kept in force at (as_of, known_at).

    Folded per (agency, entry), whose feedback shares one partition: partitions can be replayed apart.
    """
    supports: dict[tuple[str, str], dict[str, tuple[str, dt.datetime | None]]] = {}
    for r in _visible(first_records(feedback), as_of, known_at):
        event: FeedbackEvent = r.event  # type: ignore[assignment]
        held = supports.setdefault((event.agency, event.entry_id), {})
        if event.event_type == "SanctionApplied":
            for m in event.measures:
                held[m] = (event.subject_id, None)
        elif event.event_type == "SanctionLifted":
            for m in event.measures:
                held.pop(m, None)
        elif event.event_type == "SanctionRetained":
            for m in event.measures:
                held[m] = (event.subject_id, event.retain_until)  # type: ignore[attr-defined]
    return {
        (agency, subject, measure)
        for (agency, _entry), held in supports.items()
        for measure, (subject, until) in held.items()
        if until is None or until > as_of
    }


def by_agency(supports: Iterable[tuple[str, str, str]]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, set[str]]] = {}
    for agency, subject, measure in supports:
        out.setdefault(agency, {}).setdefault(subject, set()).add(measure)
    return {a: {s: sorted(m) for s, m in sorted(subjects.items())} for a, subjects in sorted(out.items())}


def agency_sanctions(
    feedback: Iterable[Recorded], as_of: dt.datetime, known_at: dt.datetime
) -> dict[str, dict[str, list[str]]]:
    """What each agency reported it enforced at (as_of, known_at): {agency: {subject: [measures]}}."""
    return by_agency(sanction_supports(feedback, as_of, known_at))


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()
