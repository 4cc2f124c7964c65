"""The public register on the real broker and database: PUBLIC entries in force only, IDs masked, and its
state a pure function of the court history, however the acts arrive (docs/design.md §10)."""

from __future__ import annotations

import datetime as dt
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from hub.codec import default_codec
from hub.domain.events import parse_event
from hub.domain.history import entry_states
from hub.domain.lifecycle import Recorded
from hub.domain.register import Listing, register
from hub.engine import ConsumerEngine
from hub.register import search
from hub.register.service import RegisterHandler, open_database
from tests.integration.helpers import publish
from tests.support import ORG, PERSON, PERSON_ID, court_sample

BASE = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def run_register_once(settings) -> int:
    return ConsumerEngine(
        settings, RegisterHandler(settings), open_database(settings), default_codec(), once=True
    ).run()


def listings(settings) -> dict[str, Listing]:
    db = open_database(settings)
    with db.connect() as conn:
        ids = conn.execute(text("select entry_id from public_entries")).scalars().all()
        out = {i: search.entry(conn, i) for i in ids}
    db.dispose()
    return out  # type: ignore[return-value]


def court(kind: str, entry_id: str, n: int, debtor: dict, minutes: int = 0, **fields):
    record = court_sample(kind)
    record.update(
        entry_id=entry_id,
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        debtor=debtor,
        occurred_at=(BASE + dt.timedelta(minutes=minutes)).isoformat(),
        **fields,
    )
    return parse_event(record)


def test_public_entries_only_masked_and_gone_when_shielded(hub_settings):
    publish(
        hub_settings,
        [
            court("Included", "P-1", 1, PERSON, disclosure="PUBLIC"),
            court("Included", "R-1", 2, {**PERSON, "name": "王五"}, disclosure="RESTRICTED"),
            court("Included", "O-1", 3, ORG, disclosure="PUBLIC"),
        ],
    )
    assert run_register_once(hub_settings) == 0
    shown = listings(hub_settings)
    assert set(shown) == {"P-1", "O-1"}
    assert shown["P-1"].id_shown == PERSON_ID[:10] + "****" + PERSON_ID[14:]
    assert shown["O-1"].id_shown == ORG["id_number"] and shown["O-1"].legal_representative == "李四"
    db = open_database(hub_settings)
    with db.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(text("select * from public_entries, entry_acts")) for v in row)
        found = search.search(conn, search.Query(name="张", id_number=PERSON_ID))
        restricted = search.search(conn, search.Query(name="王五"))
    db.dispose()
    assert PERSON_ID not in stored and ORG["legal_representative"]["id_number"] not in stored
    assert [e.entry_id for e in found.listings] == ["P-1"]
    assert restricted.listings == [] and restricted.total == 0

    publish(hub_settings, [court("Shielded", "P-1", 4, PERSON, minutes=10)])
    assert run_register_once(hub_settings) == 0
    assert set(listings(hub_settings)) == {"O-1"}


KINDS = st.sampled_from(["Included", "Shielded", "Revoked", "RiskWarningIssued"])


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_register_is_a_pure_function_of_the_court_history(namespaces, data):
    """Random acts on a few entries, published in random order in several rounds: after each round the
    register holds exactly the PUBLIC entries that the audit's fold finds ACTIVE, with their first
    inclusion's details."""
    settings_ = namespaces()
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    history = []
    n = 0
    for _round in range(data.draw(st.integers(1, 3))):
        batch = []
        for _ in range(data.draw(st.integers(1, 12))):
            n += 1
            entry = f"E-{rng.randrange(5)}"
            kind = data.draw(KINDS)
            fields = {"disclosure": rng.choice(["PUBLIC", "RESTRICTED"])} if kind == "Included" else {}
            debtor = {**PERSON, "name": f"债务人{entry}"}
            batch.append(court(kind, entry, n, debtor, minutes=rng.randrange(60), **fields))
        rng.shuffle(batch)
        publish(settings_, batch)
        history.extend(batch)
        assert run_register_once(settings_) == 0
        recorded = [Recorded(e, BASE, p) for p, e in enumerate(history)]
        expected = register(recorded)
        far = BASE + dt.timedelta(days=1)
        states = entry_states(recorded, far, far)
        assert set(expected) == {
            e for e, v in states.items() if v["state"] == "ACTIVE" and v.get("disclosure") == "PUBLIC"
        }
        assert listings(settings_) == expected
