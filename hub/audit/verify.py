"""`hub audit verify`: the topics against the ledger and every agency's database, and the ledger's
hash chain against the checkpoints it published. Every difference is named; none means exit 0."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.agency import store as agency_store
from hub.config import Settings
from hub.db import AUDITOR, WEB, engine_for
from hub.domain.events import event_to_record, parse_event
from hub.domain.history import Recorded, agency_sanctions, canonical_json, entry_states
from hub.ledger import service as ledger
from hub.ledger.chain import GENESIS, link

from .replay import TopicHistory, read_history

SHOWN = 50  # differences of one kind printed in full; the rest are counted


@dataclass
class Verification:
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences

    def differ(self, kind: str, items: list[str]) -> None:
        for item in items[:SHOWN]:
            self.differences.append(f"{kind}: {item}")
        if len(items) > SHOWN:
            self.differences.append(f"{kind}: ... and {len(items) - SHOWN} more")


def verify(settings: Settings, progress=None, history: TopicHistory | None = None) -> Verification:
    result = Verification()
    history = history or read_history(settings, progress=progress)
    now = dt.datetime.now(dt.UTC)
    result.notes.append(
        f"topics: {history.records} records, {len(history.court)} court and {len(history.feedback)} feedback events "
        f"decoded, {history.undecodable} undecodable or invalid (dead-lettered by the services), "
        f"{len(history.checkpoints)} checkpoints"
    )
    _check_ledger(settings, history, now, result)
    for agency in settings.agencies:
        _check_agency(settings, agency, history, now, result)
    return result


def record_result(settings: Settings, result: Verification) -> str | None:
    """Store the result for the oversight desk (hub web serve): the one row the auditor writes. A desk not set up
    yet, or away, does not fail a verification: what went wrong is returned, to be said."""
    summary = "; ".join([*result.notes, *(str(d) for d in result.differences[:5])])[:4000]
    db = engine_for(settings, WEB, role=AUDITOR)
    try:
        with db.begin() as conn:
            conn.execute(
                text(
                    "insert into verifications (finished_at, passed, differences, summary) "
                    "values (now(), :passed, :n, :summary)"
                ),
                {"passed": result.ok, "n": len(result.differences), "summary": summary},
            )
    except DBAPIError as exc:
        first = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else str(exc)[:200]
        return f"the result is not recorded for the oversight desk ({first}; `hub web serve` makes its database)"
    finally:
        db.dispose()
    return None


def _check_ledger(settings: Settings, history: TopicHistory, now: dt.datetime, result: Verification) -> None:
    db = ledger.read_database(settings)
    court: list[Recorded] = []
    feedback: list[Recorded] = []
    stored: dict[str, list[str]] = {}  # event id -> the contents stored under it, in chain order
    imported: dict[str, bool] = {}
    altered: list[str] = []
    broken_links: list[str] = []
    heads: dict[int, str] = {}
    prev = GENESIS
    with db.connect() as conn:
        for row, stored_prev, stored_hash in ledger.rows(conn):
            if stored_prev != prev:
                broken_links.append(f"row {row.seq} (event {row.event_id}) does not follow the row before it")
            computed = link(stored_prev, row)
            if computed != stored_hash:
                altered.append(
                    f"row {row.seq} (event {row.event_id}, {row.event_type}) was changed: its content hashes to "
                    f"{computed[:16]}…, the chain recorded {stored_hash[:16]}…"
                )
            prev = stored_hash
            heads[row.seq] = stored_hash
            stored.setdefault(row.event_id, []).append(row.body)
            event = parse_event(json.loads(row.body), row.family)
            (court if row.family == "court" else feedback).append(
                Recorded(event, row.recorded_at, row.seq, row.historical)
            )
            imported.setdefault(row.event_id, row.historical)
    db.dispose()
    result.differ("ledger chain", altered + broken_links)

    # A rewrite that re-hashed every later row passes the checks above; the published heads catch it.
    anchored = 0
    failing: list[int] = []
    for checkpoint in history.checkpoints:
        if checkpoint["ledger"] != settings.ledger_name:
            continue
        count = checkpoint["row_count"]
        if count not in heads:
            result.differ(
                "ledger checkpoint", [f"a checkpoint anchors {count} rows, but the ledger holds {len(heads)}"]
            )
        elif heads[count] != checkpoint["head_hash"]:
            failing.append(count)
        anchored = max(anchored, count)
    if failing:
        result.differ(
            "ledger checkpoint",
            [
                f"{len(failing)} published checkpoints disagree with the stored chain, "
                f"the first at row {min(failing)}: rows up to there were rewritten"
            ],
        )
    result.notes.append(f"ledger: {len(heads)} rows in the chain, {anchored} anchored by published checkpoints")
    if len(heads) > anchored:
        result.notes.append(f"ledger: {len(heads) - anchored} newest rows not yet anchored by a checkpoint")

    on_topics: dict[str, Recorded] = {}
    versions: dict[str, list[str]] = {}  # an identical republication is one version; other content is another
    for r in sorted([*history.court, *history.feedback], key=lambda r: r.position):
        on_topics.setdefault(r.event.event_id, r)
        body = canonical_json(event_to_record(r.event))
        if body not in versions.setdefault(r.event.event_id, []):
            versions[r.event.event_id].append(body)
    missing = sorted(set(on_topics) - set(stored))
    extra = sorted(set(stored) - set(on_topics))
    changed = sorted(event_id for event_id in set(on_topics) & set(stored) if versions[event_id] != stored[event_id])
    result.differ("ledger", [f"event {e} is on the topics but not in the ledger" for e in missing])
    result.differ("ledger", [f"event {e} is in the ledger but on no topic" for e in extra])
    result.differ("ledger", [f"event {e} differs between the topics and the ledger" for e in changed])
    marks = sorted(e for e in set(on_topics) & set(imported) if on_topics[e].historical != imported[e])
    result.differ(
        "ledger", [f"event {e} is marked as a historical import on one side only (topic or ledger)" for e in marks]
    )

    topic_entries = entry_states(history.court, now, now)
    ledger_entries = entry_states(court, now, now)
    result.differ("ledger entries", _diff_maps(topic_entries, ledger_entries, "topics", "ledger"))
    topic_sanctions = agency_sanctions(history.feedback, now, now)
    ledger_sanctions = agency_sanctions(feedback, now, now)
    result.differ("ledger sanctions", _diff_maps(topic_sanctions, ledger_sanctions, "topics", "ledger"))


def _check_agency(
    settings: Settings, agency: str, history: TopicHistory, now: dt.datetime, result: Verification
) -> None:
    try:
        db = engine_for(settings, agency, role=AUDITOR)
        with db.connect() as conn:
            conn.execute(text("select 1 from restrictions limit 1"))
            in_database = agency_store.restrictions(conn, now)
        db.dispose()
    except DBAPIError as exc:
        result.differ(agency, [f"its database cannot be read ({str(exc.orig).strip()}); has the service run?"])
        return
    reported = agency_sanctions(history.feedback, now, now).get(agency, {})
    enforced: dict[str, list[str]] = {}
    for subject, measure in in_database:
        enforced.setdefault(subject, []).append(measure)
    enforced = {s: sorted(m) for s, m in sorted(enforced.items())}
    result.differ(agency, _diff_maps(reported, enforced, "its feedback", "its database"))
    result.notes.append(
        f"{agency}: {sum(len(m) for m in enforced.values())} restrictions in force on {len(enforced)} subjects"
    )


def _diff_maps(left: dict, right: dict, left_name: str, right_name: str) -> list[str]:
    out = []
    for key in sorted(set(left) | set(right)):
        if key not in right:
            out.append(f"{key}: in {left_name} ({left[key]}) but not in {right_name}")
        elif key not in left:
            out.append(f"{key}: in {right_name} ({right[key]}) but not in {left_name}")
        elif left[key] != right[key]:
            out.append(f"{key}: {left_name} say {left[key]}, {right_name} say {right[key]}")
    return out
