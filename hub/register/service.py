"""`hub register run`: the public register as a read model on the shared consumer engine.

It reads the court topic only, as its own principal, into its own database; each batch's changes commit
with the batch's offsets (hub/engine/engine.py), so the register is exactly-once like the agencies. Every
binding act is kept per entry (kind, times, position; the public listing of a PUBLIC inclusion), the
entry's life is folded again, and its row in `public_entries` is written or removed to match
`hub.domain.register.listed`. It publishes nothing but dead letters.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import Connection, Engine, text

from hub.acl import REGISTER
from hub.config import Settings
from hub.db import MIGRATION_CHAINS, copy_rows, open_owned, scratch_table
from hub.domain.events import Included
from hub.domain.lifecycle import BINDING, Act, fold
from hub.domain.register import Listing, listed, listing_of
from hub.engine import Delivered, OutboxMessage
from hub.log import get_logger
from hub.register.search import COLUMNS
from hub.topics import COURT_EVENTS

StoredAct = Act[tuple[str, dict[str, Any] | None]]  # item: (event id, listing of a PUBLIC inclusion)


def open_database(settings: Settings, *, forever: bool = False) -> Engine:
    """The register's database as its owner, migrated if need be (see hub.db.open_owned)."""
    return open_owned(settings, "register", *MIGRATION_CHAINS["register"], forever=forever)


def _to_json(acts: list[StoredAct]) -> str:
    return json.dumps(
        [[a.kind, a.item[0], a.occurred_at.isoformat(), a.position, a.item[1]] for a in acts], ensure_ascii=False
    )


def _from_json(stored: list) -> list[StoredAct]:
    return [Act(kind, dt.datetime.fromisoformat(at), pos, (eid, shown)) for kind, eid, at, pos, shown in stored]


def _listing(act_item: tuple[str, dict[str, Any] | None]) -> Listing | None:
    return None if act_item[1] is None else Listing.from_dict(act_item[1])


class RegisterHandler:
    """Keeps `public_entries` equal to the register that the court history makes."""

    def __init__(self, settings: Settings):
        self.service = "register"
        self.reads_only = True  # its run is summarised as events read (hub.engine.RunSummary)
        self.principal = REGISTER
        self.source = settings.topic(COURT_EVENTS)
        self.log = get_logger("hub.register")

    def subscription(self) -> list[str]:
        return [self.source]

    def family(self, topic: str) -> str:
        return "court"

    def check(self, delivered: Delivered) -> str | None:
        return None

    def apply(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        binding = [d for d in batch if d.event.event_type in BINDING]
        if not binding:
            return []
        ids = list({d.event.entry_id for d in binding})  # type: ignore[attr-defined]
        rows = conn.execute(text("select entry_id, acts from entry_acts where entry_id = any(:ids)"), {"ids": ids})
        acts: dict[str, list[StoredAct]] = {r.entry_id: _from_json(r.acts) for r in rows}
        for d in binding:
            event = d.event
            shown = listing_of(event) if isinstance(event, Included) else None
            known = acts.setdefault(event.entry_id, [])  # type: ignore[attr-defined]
            if not any(a.item[0] == event.event_id for a in known):
                item = (event.event_id, shown.as_dict() if shown else None)
                known.append(Act(event.event_type, event.occurred_at, d.offset, item))
        listings = {entry_id: listed(fold(entry_acts), _listing) for entry_id, entry_acts in acts.items()}
        scratch_table(conn, "incoming_acts", "entry_id text, acts jsonb")
        copy_rows(conn, "incoming_acts", ("entry_id", "acts"), ((e, _to_json(a)) for e, a in acts.items()))
        conn.execute(
            text(
                "insert into entry_acts (entry_id, acts) select entry_id, acts from incoming_acts "
                "on conflict (entry_id) do update set acts = excluded.acts"
            )
        )
        conn.execute(text("delete from public_entries where entry_id = any(:ids)"), {"ids": ids})
        shown_now = [v for v in listings.values() if v is not None]
        if shown_now:
            scratch_table(conn, "incoming_listings", "like public_entries including defaults")
            copy_rows(
                conn,
                "incoming_listings",
                COLUMNS,
                ([list(v.grounds) if c == "grounds" else getattr(v, c) for c in COLUMNS] for v in shown_now),
            )
            conn.execute(
                text(
                    f"insert into public_entries ({', '.join(COLUMNS)}) "
                    f"select {', '.join(COLUMNS)} from incoming_listings"
                )
            )
        self.log.debug("register changed", entries=len(ids), listed=len(shown_now))
        return []

    def repeated(self, conn: Connection, batch: list[Delivered], now: dt.datetime) -> list[OutboxMessage]:
        return []

    def tick(self, conn: Connection, now: dt.datetime, final: bool = False) -> list[OutboxMessage]:
        return []
