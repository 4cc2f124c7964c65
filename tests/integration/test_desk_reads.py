"""The desk's reads of the ledger (hub/web/sources.py) on the real database: each is the answer the whole
history gives, computed the way the rules and charts compute it, for an entry, an agency's start, the
breaches and the agencies' answers, with a block naming two entries and a republished feedback in it."""

from __future__ import annotations

import datetime as dt
import uuid

from hub.acl import agency_principal
from hub.clients import idempotent_producer
from hub.codec import default_codec, event_headers
from hub.domain import oversight
from hub.domain.events import parse_event
from hub.domain.rules import judge
from hub.ledger.service import history, read_database
from hub.topics import feedback_topic
from hub.web.sources import Sources
from tests.integration.helpers import (
    feedback_records,
    ledger_query,
    publish,
    run_agency_once,
    run_ledger_once,
    simulated,
)

CST = dt.timezone(dt.timedelta(hours=8))


def _produce(settings, agency: str, events) -> None:
    codec = default_codec()
    producer = idempotent_producer(settings, agency_principal(agency))
    for event in events:
        producer.produce(
            settings.topic(feedback_topic(agency)),
            key=event.debtor_id.encode(),
            value=codec.encode_event(event),
            headers=event_headers(event),
        )
    assert producer.flush(10) == 0


def _whole(settings):
    db = read_database(settings)
    with db.connect() as conn:
        court, feedback = history(conn)
    db.dispose()
    return court, feedback


def _seqs(records) -> list[int]:
    return [r.position for r in records]


def test_the_desk_reads_what_the_whole_history_says(hub_settings):
    settings = hub_settings.model_copy(update={"agencies": ("bank", "tax")})
    publish(settings, simulated(120, seed=77, breach_rate=0.1))
    for agency in settings.agencies:
        assert run_agency_once(settings, agency) == 0
    assert run_ledger_once(settings) == 0
    entries = [r[0] for r in ledger_query(settings, "select distinct entry_id from ledger_events order by 1")]
    first, second = entries[0], entries[1]
    applied = next(e for e in feedback_records(settings, "bank") if e.event_type == "SanctionApplied")
    block = parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "type": "InterceptionRecorded",
            "agency": "bank",
            "occurred_at": dt.datetime.now(CST).isoformat(),
            "entry_id": first,
            "court_event_id": None,
            "debtor_id": applied.debtor_id,
            "subject_id": applied.debtor_id,
            "measures": list(applied.measures[:1]),
            "measure": applied.measures[0],
            "channel": "counter",
            "entry_ids": [first, second],
        }
    )
    # The block, and an application's id published again with other content: kept as evidence, a second row
    # that must not count as a second answer.
    again = applied.model_copy(update={"occurred_at": applied.occurred_at + dt.timedelta(seconds=1)})
    _produce(settings, "bank", [block, again])
    assert run_ledger_once(settings) == 0
    copies = "select count(*) from ledger_events where event_id = :e"
    assert ledger_query(settings, copies, e=applied.event_id)[0][0] == 2

    court, feedback = _whole(settings)
    sources = Sources(settings)
    try:
        for entry_id in entries:
            mine = [r for r in court if r.event.entry_id == entry_id]
            about = [
                r
                for r in feedback
                if r.event.entry_id == entry_id or entry_id in (getattr(r.event, "entry_ids", None) or ())
            ]
            got_court, got_feedback = sources.entry(entry_id)
            assert (_seqs(got_court), _seqs(got_feedback)) == (_seqs(mine), _seqs(about)), entry_id
        assert block.event_id in {r.event.event_id for r in sources.entry(second)[1]}

        deadlines = settings.deadlines()
        assert sources.agency_starts() == {
            a: deadlines.agency_start(a, [r for r in feedback if r.event.agency == a]) for a in settings.agencies
        }

        as_of = dt.datetime.now(dt.UTC)
        assert sources.breaches(as_of) == (as_of, judge(court, feedback, as_of, deadlines, settings.agencies))
        later = as_of + dt.timedelta(days=400)
        assert sources.breaches(later)[1] == judge(court, feedback, later, deadlines, settings.agencies)

        now = dt.datetime.now(dt.UTC)

        def key(found):  # answers compared as multisets
            return sorted((a.agency, a.answered_at, a.court_at) for a in found)

        assert key(sources.answers(14, now)) == key(oversight.answers(court, feedback))
        courts = {r.event.court_code for r in court}
        assert sources.courts_of(entries) == {r.event.entry_id: r.event.court_code for r in reversed(court)}
        for code in courts:
            own = {r.event.entry_id for r in court if r.event.court_code == code}
            expected = oversight.answers(
                [r for r in court if r.event.entry_id in own], [r for r in feedback if r.event.entry_id in own]
            )
            assert key(sources.answers(14, now, code)) == key(expected), code
    finally:
        sources.close()
