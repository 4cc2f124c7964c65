"""Bitemporal reconstruction: legal time (as_of) against record time (known_at)."""

import datetime as dt

from hub.domain.events import parse_event
from hub.domain.history import Recorded, agency_sanctions, digest, entry_states
from tests.support import court_sample, feedback_sample

UTC = dt.UTC
T0 = dt.datetime(2026, 3, 1, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def rec(record, recorded_at, position):
    return Recorded(parse_event(record), recorded_at, position)


def court(kind, occurred, n, **fields):
    record = court_sample(kind)
    record.update(
        event_id=f"00000000-0000-4000-8000-{n:012d}", entry_id="E1", occurred_at=occurred.isoformat(), **fields
    )
    return record


def test_a_shielding_published_late_is_in_force_from_its_decision_but_unknown_until_published():
    decided = T0 + 10 * DAY
    published = decided + 5 * DAY
    history = [
        rec(court("RiskWarningIssued", T0 - DAY, 1, served_at=(T0 - DAY).isoformat()), T0 - DAY, 1),
        rec(court("Included", T0, 2), T0, 2),
        rec(court("Shielded", decided, 3), published, 3),
    ]
    during = decided + 2 * DAY
    assert entry_states(history, as_of=during, known_at=published)["E1"]["state"] == "SHIELDED"
    assert entry_states(history, as_of=during, known_at=during)["E1"]["state"] == "ACTIVE"
    assert entry_states(history, as_of=T0 - DAY, known_at=published)["E1"]["state"] == "WARNED"
    assert entry_states(history, as_of=T0 - 2 * DAY, known_at=published) == {}


def test_sanctions_follow_applied_lifted_and_retained_feedback():
    def fb(kind, at, n, **fields):
        record = feedback_sample(
            kind, occurred_at=at.isoformat(), event_id=f"10000000-0000-4000-8000-{n:012d}", **fields
        )
        return rec(record, at, n)

    until = T0 + 30 * DAY
    measures = ["AIR_TRAVEL_RESTRICTED", "HIGH_SPEED_RAIL_RESTRICTED"]
    history = [
        fb("SanctionApplied", T0, 1, measures=measures),
        fb("SanctionLifted", T0 + DAY, 2, measures=["HIGH_SPEED_RAIL_RESTRICTED"]),
        fb("SanctionRetained", T0 + DAY, 3, measures=["AIR_TRAVEL_RESTRICTED"], retain_until=until.isoformat()),
    ]
    subject = history[0].event.subject_id
    assert agency_sanctions(history, T0, T0) == {"transport": {subject: measures}}
    assert agency_sanctions(history, T0 + 2 * DAY, T0 + 2 * DAY) == {"transport": {subject: ["AIR_TRAVEL_RESTRICTED"]}}
    assert agency_sanctions(history, until, until) == {}
    assert agency_sanctions(history, T0 + 2 * DAY, T0 + dt.timedelta(hours=1)) == {"transport": {subject: measures}}


def test_digest_is_canonical():
    assert digest({"b": 1, "a": ["中", 2]}) == digest({"a": ["中", 2], "b": 1})
    assert digest({"a": 1}) != digest({"a": 2})
