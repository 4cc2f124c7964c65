"""The ledger's hash chain: each stored row carries SHA-256(previous hash, the row's stored columns).

Changing any column of any row changes that row's hash; rewriting every later hash to hide it is caught
by the heads published to `ledger.checkpoints`, which the ledger cannot take back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from hub.domain.history import canonical_json

GENESIS = "0" * 64


@dataclass(frozen=True)
class LedgerRow:
    seq: int
    event_id: str
    topic: str
    partition: int
    offset: int
    recorded_at: dt.datetime
    family: str
    event_type: str
    entry_id: str
    agency: str | None
    court_event_id: str | None
    occurred_at: dt.datetime
    body: str
    historical: bool = False

    def content(self) -> str:
        # The mark of a historical import joins the hashed content only when set, so rows chained before it
        # existed keep their hashes.
        return canonical_json(
            [
                self.seq,
                self.event_id,
                self.topic,
                self.partition,
                self.offset,
                _utc(self.recorded_at),
                self.family,
                self.event_type,
                self.entry_id,
                self.agency,
                self.court_event_id,
                _utc(self.occurred_at),
                self.body,
                *(["historical"] if self.historical else []),
            ]
        )


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def link(prev_hash: str, row: LedgerRow) -> str:
    return hashlib.sha256(f"{prev_hash}\n{row.content()}".encode()).hexdigest()
