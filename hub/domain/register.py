"""The public register (docs/design.md §10, the Opinions' 供公众免费查询): what the public may see of the list.

Only entries the court made PUBLIC and that are ACTIVE now, in the form the courts' own portal uses: a
resident ID with birth month and day hidden, an organisation's credit code in full with its legal
representative's name (never the representative's ID). A RESTRICTED entry leaves no trace here, not even
masked. The register is a pure function of the court's history, folded by the one lifecycle
(hub/domain/lifecycle.py), so an act published late or out of order lands where the law puts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hub.domain.events import Included
from hub.domain.history import first_records
from hub.domain.ids import mask_resident_id
from hub.domain.lifecycle import ACTIVE, Life, Recorded, lives


def id_digest(id_number: str) -> str:
    """How the register finds an entry by ID number without keeping the number: its SHA-256 (hex).

    The number is normalised first (upper case, no spaces) as the query side does."""
    return hashlib.sha256(id_number.strip().upper().encode()).hexdigest()


def shown_id(kind: str, id_number: str) -> str:
    """The ID number as the public sees it: a person's masked, an organisation's credit code in full."""
    return id_number if kind == "ORG" else mask_resident_id(id_number)


@dataclass(frozen=True)
class Listing:
    """One public entry, holding nothing the public may not see (and the digest that finds it by ID)."""

    entry_id: str
    debtor_kind: str
    name: str
    id_shown: str
    id_digest: str
    legal_representative: str | None
    court_code: str
    court_name: str
    case_number: str
    grounds: tuple[str, ...]
    obligation: str
    included_at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies, and the register calls this for every public inclusion.
        return {
            "entry_id": self.entry_id,
            "debtor_kind": self.debtor_kind,
            "name": self.name,
            "id_shown": self.id_shown,
            "id_digest": self.id_digest,
            "legal_representative": self.legal_representative,
            "court_code": self.court_code,
            "court_name": self.court_name,
            "case_number": self.case_number,
            "grounds": list(self.grounds),
            "obligation": self.obligation,
            "included_at": self.included_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Listing:
        return cls(
            **{**data, "grounds": tuple(data["grounds"]), "included_at": dt.datetime.fromisoformat(data["included_at"])}
        )


def listing_of(included: Included) -> Listing | None:
    """What an inclusion shows the public; None when the court restricted it."""
    if included.disclosure != "PUBLIC":
        return None
    debtor = included.debtor
    return Listing(
        entry_id=included.entry_id,
        debtor_kind=debtor.kind,
        name=debtor.name,
        id_shown=shown_id(debtor.kind, debtor.id_number),
        id_digest=id_digest(debtor.id_number),
        legal_representative=debtor.legal_representative.name if debtor.legal_representative else None,
        court_code=included.court_code,
        court_name=included.court_name,
        case_number=included.case_number,
        grounds=tuple(included.grounds),
        obligation=included.obligation,
        included_at=included.occurred_at,
    )


def listed(life: Life[Any], listing: Any) -> Listing | None:
    """An entry's public listing given its life: the first accepted inclusion's, while the entry is ACTIVE.

    `listing(item)` turns the life's item for that inclusion into its Listing (or None if restricted)."""
    if life.state is not ACTIVE:
        return None
    included = life.first("Included")
    return None if included is None else listing(included)


def register(court: Iterable[Recorded]) -> dict[str, Listing]:
    """The register as the whole court history makes it, keyed by entry id: what the service must hold."""
    out: dict[str, Listing] = {}
    for entry_id, life in lives(first_records(court)).items():
        shown = listed(life, lambda r: listing_of(r.event) if isinstance(r.event, Included) else None)
        if shown is not None:
            out[entry_id] = shown
    return out
