"""The life of a list entry as the courts tell it (DESIGN §1), in one place for the ledger and the audit.

WARNED -> ACTIVE -> SHIELDED or REVOKED (a shielded entry may still be revoked). Anything else (an act
on an entry never included, a second inclusion, a release of a released entry, a decision on no
request) contradicts the entry's state: the transition is refused and the ledger reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.domain.events import CourtEvent


class EntryState(StrEnum):
    WARNED = "WARNED"
    ACTIVE = "ACTIVE"
    SHIELDED = "SHIELDED"
    REVOKED = "REVOKED"


@dataclass(frozen=True)
class Transition:
    state: EntryState | None  # the state after the event (unchanged when refused)
    refused: str | None = None  # why the event contradicts the entry, if it does


def step(state: EntryState | None, event: CourtEvent, correction_pending: bool = False) -> Transition:
    kind = event.event_type
    if kind == "RiskWarningIssued":
        if state in (None, EntryState.WARNED):
            return Transition(EntryState.WARNED)
        return Transition(state, f"risk warning for an entry already {state}")
    if kind == "Included":
        if state in (None, EntryState.WARNED):
            return Transition(EntryState.ACTIVE)
        return Transition(state, f"inclusion of an entry already {state}")
    if state is None or state is EntryState.WARNED:
        return Transition(state, f"{kind} for an entry never included")
    if kind == "CorrectionRequested":
        if state is EntryState.ACTIVE:
            return Transition(state)
        return Transition(state, f"correction requested for an entry already {state}")
    if kind == "CorrectionDecided":
        if correction_pending:
            return Transition(state)
        return Transition(state, "correction decided with no pending request")
    if kind == "Shielded":
        if state is EntryState.ACTIVE:
            return Transition(EntryState.SHIELDED)
        return Transition(state, f"shielding of an entry already {state}")
    if kind == "Revoked":
        if state in (EntryState.ACTIVE, EntryState.SHIELDED):
            return Transition(EntryState.REVOKED)
        return Transition(state, "revocation of an entry already REVOKED")
    return Transition(state, f"unknown court act {kind}")
