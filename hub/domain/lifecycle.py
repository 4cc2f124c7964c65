"""The life of a list entry, in one place for the agencies, the ledger and the audit.

WARNED -> ACTIVE -> SHIELDED or REVOKED (a shielded entry may still be revoked: a listing found wrongful
after the debtor performed). Anything else (an act on an entry never included, a second inclusion, a
shielding of a shielded or revoked entry, a decision on no request) contradicts the entry's state: the
act is refused, and the ledger reports it.

An entry's acts are taken in **legal order**: by `occurred_at`, ties broken by record position. Courts
publish late and out of order (a risk warning sent after the inclusion it preceded), but what was in force
follows from when the acts happened, so every judge folds the same acts in the same order and reaches the
same state, whatever order the records arrived in. A court event type is added here, in TRANSITIONS, and
as its model in events.py; nothing else decides an entry's life.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from hub.domain.events import Event


class EntryState(StrEnum):
    WARNED = "WARNED"
    ACTIVE = "ACTIVE"
    SHIELDED = "SHIELDED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class Recorded:
    """An event with when the broker recorded it, and its position in the record (for stable order)."""

    event: Event
    recorded_at: dt.datetime
    position: int
    historical: bool = False  # loaded as a historical import: exempt from publication-time rules


@dataclass(frozen=True)
class Transition:
    state: EntryState | None  # the state after the act (unchanged when refused)
    refused: str | None = None  # why the act contradicts the entry, if it does


Rule = Callable[[EntryState | None, bool], Transition]
NEW = None  # an entry no act has touched yet
WARNED, ACTIVE, SHIELDED, REVOKED = EntryState.WARNED, EntryState.ACTIVE, EntryState.SHIELDED, EntryState.REVOKED


def _move(kind: str, allowed: tuple[EntryState | None, ...], to: EntryState | None, what: str) -> Rule:
    def rule(state: EntryState | None, _pending: bool) -> Transition:
        if state in allowed:
            return Transition(state if to is None else to)
        if state in (NEW, WARNED) and kind not in ("RiskWarningIssued", "Included"):
            return Transition(state, f"{kind} for an entry never included")
        return Transition(state, f"{what} an entry already {state}")

    return rule


def _decision(state: EntryState | None, pending: bool) -> Transition:
    if state in (NEW, WARNED):
        return Transition(state, "CorrectionDecided for an entry never included")
    return Transition(state) if pending else Transition(state, "correction decided with no pending request")


# What each court act does to an entry, by event type: the one definition of an entry's life.
TRANSITIONS: dict[str, Rule] = {
    "RiskWarningIssued": _move("RiskWarningIssued", (NEW, WARNED), WARNED, "risk warning for"),
    "Included": _move("Included", (NEW, WARNED), ACTIVE, "inclusion of"),
    "CorrectionRequested": _move("CorrectionRequested", (ACTIVE,), None, "correction requested for"),
    "CorrectionDecided": _decision,
    "Shielded": _move("Shielded", (ACTIVE,), SHIELDED, "shielding of"),
    "Revoked": _move("Revoked", (ACTIVE, SHIELDED), REVOKED, "revocation of"),
}
# The acts that change what an entry makes anyone do (the agencies need only these).
BINDING = frozenset({"Included", "Shielded", "Revoked"})


def step(state: EntryState | None, kind: str, correction_pending: bool = False) -> Transition:
    rule = TRANSITIONS.get(kind)
    if rule is None:
        return Transition(state, f"unknown court act {kind}")
    return rule(state, correction_pending)


T = TypeVar("T")


@dataclass(frozen=True)
class Act(Generic[T]):
    """One court act as the fold sees it; `item` is whatever the caller keeps for it (a Recorded, say)."""

    kind: str
    occurred_at: dt.datetime
    position: int
    item: T


@dataclass
class Life(Generic[T]):
    """An entry's acts folded in legal order: its state, the acts that took effect, the ones refused."""

    state: EntryState | None = None
    since: dt.datetime | None = None  # when the state last changed (legal time)
    accepted: list[Act[T]] = field(default_factory=list)
    refused: list[tuple[Act[T], str]] = field(default_factory=list)

    def of_kind(self, *kinds: str) -> list[T]:
        return [a.item for a in self.accepted if a.kind in kinds]

    def first(self, kind: str) -> T | None:
        return next((a.item for a in self.accepted if a.kind == kind), None)


def legal_order(acts: Iterable[Act[T]]) -> list[Act[T]]:
    return sorted(acts, key=lambda a: (a.occurred_at, a.position))


def fold(acts: Iterable[Act[T]]) -> Life[T]:
    life: Life[T] = Life()
    pending = 0
    for act in legal_order(acts):
        moved = step(life.state, act.kind, pending > 0)
        if moved.refused:
            life.refused.append((act, moved.refused))
            continue
        if act.kind == "CorrectionRequested":
            pending += 1
        elif act.kind == "CorrectionDecided":
            pending -= 1
        if moved.state != life.state:
            life.state, life.since = moved.state, act.occurred_at
        life.accepted.append(act)
    return life


def recorded_act(r: Recorded) -> Act[Recorded]:
    return Act(r.event.event_type, r.event.occurred_at, r.position, r)


def lives(records: Iterable[Recorded]) -> dict[str, Life[Recorded]]:
    """Every entry's life from court records (already one record per event id), keyed by entry id."""
    by_entry: dict[str, list[Act[Recorded]]] = {}
    for r in records:
        by_entry.setdefault(r.event.entry_id, []).append(recorded_act(r))  # type: ignore[attr-defined]
    return {entry_id: fold(acts) for entry_id, acts in by_entry.items()}
