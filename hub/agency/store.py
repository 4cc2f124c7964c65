"""An agency's records in its own database: one row per entry, and the restrictions they support.

The restrictions table is derived from the entries (rewritten with each changed entry), so that an
interception check is one indexed lookup by (subject, measure).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from sqlalchemy import Connection, text

from hub.db import copy_rows, scratch_table
from hub.domain.lifecycle import Act
from hub.domain.sanctions import EntrySanction, Status

# Writers hold it shared while they take change numbers; a reader holding it alone knows every change
# numbered so far is committed (sequence numbers are handed out before commit, not in commit order).
CHANGES_LOCK = 0x6875_6232


def committed_changes(conn: Connection) -> int:
    """The highest change number below which every change is committed and visible."""
    conn.execute(text("select pg_advisory_xact_lock(:key)"), {"key": CHANGES_LOCK})
    return conn.execute(text("select coalesce(max(change_seq), 0) from entries")).scalar_one()


_COLUMNS = (
    "entry_id, debtor_id, subject_id, measures, status, included_event_id, closing_event_id, retained, retain_until, "
    "acts"
)


def _acts_json(acts: Iterable[Act[str]]) -> str:
    return json.dumps([[a.kind, a.item, a.occurred_at.isoformat(), a.position] for a in acts])


def _acts(stored: list) -> tuple[Act[str], ...]:
    return tuple(
        Act(kind, dt.datetime.fromisoformat(at), position, event_id) for kind, event_id, at, position in stored
    )


def _from_row(row) -> EntrySanction:
    return EntrySanction(
        entry_id=row.entry_id,
        debtor_id=row.debtor_id,
        subject_id=row.subject_id,
        measures=tuple(row.measures),
        status=Status(row.status),
        included_event_id=row.included_event_id,
        closing_event_id=row.closing_event_id,
        retained=tuple(row.retained),
        retain_until=row.retain_until,
        acts=_acts(row.acts),
    )


def load(conn: Connection, entry_ids: Iterable[str]) -> dict[str, EntrySanction]:
    """The entries a batch changes, locked until it commits: a retention another instance ends meanwhile
    (`due_retentions`) is then either seen here or skipped there, never overwritten."""
    ids = sorted(set(entry_ids))
    if not ids:
        return {}
    rows = conn.execute(
        text(f"select {_COLUMNS} from entries where entry_id = any(:ids) order by entry_id for update"), {"ids": ids}
    )
    return {row.entry_id: _from_row(row) for row in rows}


def load_all(conn: Connection) -> dict[str, EntrySanction]:
    return {row.entry_id: _from_row(row) for row in conn.execute(text(f"select {_COLUMNS} from entries"))}


def due_retentions(conn: Connection, now: dt.datetime) -> list[EntrySanction]:
    """Retentions to end, locked: every instance ticks, and each retention ends once. One a batch holds is
    left for the next tick."""
    rows = conn.execute(
        text(
            f"select {_COLUMNS} from entries where status = 'RETAINED' and retain_until <= :now "
            "order by entry_id for update skip locked"
        ),
        {"now": now},
    )
    return [_from_row(row) for row in rows]


def save(conn: Connection, entries: Iterable[EntrySanction]) -> None:
    """Upsert the changed entries and rewrite their restrictions: COPY, then one merge."""
    changed = list(entries)
    if not changed:
        return
    conn.execute(text("select pg_advisory_xact_lock_shared(:key)"), {"key": CHANGES_LOCK})
    scratch_table(
        conn,
        "changed_entries",
        "entry_id text, debtor_id text, subject_id text, measures text, status text, included_event_id text, "
        "closing_event_id text, retained text, retain_until timestamptz, acts text",
    )
    copy_rows(
        conn,
        "changed_entries",
        _COLUMNS.split(", "),
        (
            (
                e.entry_id,
                e.debtor_id,
                e.subject_id,
                ",".join(e.measures),
                e.status.value,
                e.included_event_id,
                e.closing_event_id,
                ",".join(e.retained),
                e.retain_until,
                _acts_json(e.acts),
            )
            for e in changed
        ),
    )
    conn.execute(
        text(
            f"insert into entries ({_COLUMNS}) select entry_id, debtor_id, subject_id, "
            "coalesce(string_to_array(nullif(measures, ''), ','), '{}'), status, included_event_id, "
            "closing_event_id, coalesce(string_to_array(nullif(retained, ''), ','), '{}'), retain_until, "
            "cast(acts as jsonb) from changed_entries "
            "on conflict (entry_id) do update set debtor_id = excluded.debtor_id, "
            "subject_id = excluded.subject_id, measures = excluded.measures, status = excluded.status, "
            "included_event_id = excluded.included_event_id, closing_event_id = excluded.closing_event_id, "
            "retained = excluded.retained, retain_until = excluded.retain_until, acts = excluded.acts, "
            "updated_at = now(), "
            "change_seq = nextval('entry_changes')"
        )
    )
    conn.execute(text("delete from restrictions where entry_id = any(:ids)"), {"ids": [e.entry_id for e in changed]})
    rows = [(s, m, e.entry_id, until) for e in changed for s, m, until in e.restrictions()]
    copy_rows(conn, "restrictions", ("subject_id", "measure", "entry_id", "until"), rows)


def blocking_entries(conn: Connection, subject: str, measure: str, now: dt.datetime) -> list[str]:
    rows = conn.execute(
        text(
            "select entry_id from restrictions where subject_id = :subject and measure = :measure "
            "and (until is null or until > :now) order by entry_id"
        ),
        {"subject": subject, "measure": measure, "now": now},
    )
    return [r.entry_id for r in rows]


def restrictions(conn: Connection, now: dt.datetime) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    rows = conn.execute(
        text("select subject_id, measure, entry_id from restrictions where until is null or until > :now"),
        {"now": now},
    )
    for r in rows:
        out.setdefault((r.subject_id, r.measure), set()).add(r.entry_id)
    return out


Interception = tuple[str, dt.datetime, str, str, str, list[str]]  # id, when, subject, measure, channel, entries


def record_interceptions(conn: Connection, blocks: Iterable[Interception]) -> None:
    """Cheap enough for a ticket office's hot path: the service turns them into feedback later."""
    rows = [
        (i, at, subject, measure, channel, ",".join(entries)) for i, at, subject, measure, channel, entries in blocks
    ]
    copy_rows(conn, "interceptions", ("event_id", "occurred_at", "subject_id", "measure", "channel", "entry_ids"), rows)


def take_interceptions(conn: Connection, limit: int = 20_000) -> list:
    """Claim unforwarded interceptions (oldest first) with the debtor behind their first entry."""
    rows = conn.execute(
        text(
            "select i.id, i.event_id::text as event_id, i.occurred_at, i.subject_id, i.measure, i.channel, "
            "i.entry_ids, e.debtor_id from interceptions i "
            "left join entries e on e.entry_id = split_part(i.entry_ids, ',', 1) "
            "where not i.forwarded order by i.id limit :limit for update of i skip locked"
        ),
        {"limit": limit},
    ).all()
    if rows:
        conn.execute(
            text("update interceptions set forwarded = true where id = any(:ids)"), {"ids": [r.id for r in rows]}
        )
    return rows
