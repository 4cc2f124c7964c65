"""One lifecycle for every judge: the agencies, the ledger's rules and the audit's replay fold an entry's acts in
legal order (occurred_at, then record position), so whatever order the records arrive in, they agree."""

import datetime as dt
import itertools
import random
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers import bank, transport
from hub.domain.events import CourtEvent, parse_event
from hub.domain.history import entry_states
from hub.domain.lifecycle import TRANSITIONS, EntryState, Recorded
from hub.domain.rules import court_view, judge
from hub.domain.sanctions import Status, replay
from producers.simulator import SimulationConfig, simulate
from tests.support import ORG, PERSON, court_sample

_ids = itertools.count(1)
CST = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2025, 3, 3, 9, tzinfo=CST)
LATER = dt.datetime(2027, 1, 1, tzinfo=CST)
KINDS = ["RiskWarningIssued", "Included", "CorrectionRequested", "CorrectionDecided", "Shielded", "Revoked"]
# What an agency's status says about the entry's state (FAILED: listed, but nothing this agency can apply).
AGENCY_STATE = {
    Status.APPLIED: EntryState.ACTIVE,
    Status.FAILED: EntryState.ACTIVE,
    Status.LIFTED: EntryState.SHIELDED,
    Status.RETAINED: EntryState.SHIELDED,
    Status.REVOKED: EntryState.REVOKED,
}


def _event(kind: str, entry: str, at: dt.datetime, debtor: dict) -> CourtEvent:
    record = court_sample(kind)
    record.update(event_id=str(uuid.UUID(int=next(_ids), version=4)), entry_id=entry, debtor=debtor)
    record["occurred_at"] = at.isoformat()
    for field in ("served_at", "received_at"):
        if field in record:
            record[field] = at.isoformat()
    if kind == "Shielded":
        record.update(reason="CREDITOR_REQUEST", performed_at=None)
    if kind == "Included":
        record["served_at"] = None
    return parse_event(record)  # type: ignore[return-value]


@st.composite
def histories(draw) -> list[CourtEvent]:
    """A few entries, each a random sequence of acts days apart, some of them impossible, in random record order."""
    events = []
    for n in range(draw(st.integers(1, 4))):
        debtor = draw(st.sampled_from([PERSON, ORG]))
        kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=7))
        days = draw(st.lists(st.integers(0, 400), min_size=len(kinds), max_size=len(kinds)))
        events += [_event(k, f"E{n}", T0 + dt.timedelta(days=d), debtor) for k, d in zip(kinds, days, strict=True)]
    return draw(st.permutations(events))


def _agree(events: list[CourtEvent]) -> None:
    court = [Recorded(e, LATER, position) for position, e in enumerate(events)]
    audit = {entry: EntryState(view["state"]) for entry, view in entry_states(court, LATER, LATER).items()}
    ledger = {entry: state for entry, state in court_view(court, LATER).items() if state is not None}
    assert ledger == audit
    for policy in (bank.POLICY, transport.POLICY):
        agency = replay(policy, events, LATER)
        by_status = {e: AGENCY_STATE[r.status] for e, r in agency.entries.items() if r.status in AGENCY_STATE}
        binding = {e: s for e, s in audit.items() if s is not EntryState.WARNED}
        assert by_status == binding, policy.name
        restricted = {entry for entries in agency.restrictions(LATER).values() for entry in entries}
        assert restricted == {e for e, s in audit.items() if s is EntryState.ACTIVE}, policy.name


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_agencies_ledger_and_audit_agree_on_every_entry_whatever_the_record_order(events):
    _agree(events)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), late=st.floats(0.0, 0.5))
def test_they_agree_on_simulated_histories_with_warnings_published_late(seed, late):
    rng = random.Random(seed)
    events = [parse_event(r) for r in simulate(SimulationConfig(debtors=60, seed=seed, breach_rate=0.1)).events]
    warnings = [e for e in events if e.event_type == "RiskWarningIssued" and rng.random() < late]
    others = [e for e in events if e not in warnings]
    _agree(others + warnings)  # the warnings arrive after everything else


def test_a_warning_published_after_the_inclusion_it_preceded_is_a_normal_warning():
    warning = _event("RiskWarningIssued", "E", T0, PERSON)
    included = _event("Included", "E", T0 + dt.timedelta(days=10), PERSON)
    court = [
        Recorded(included, T0 + dt.timedelta(days=10), 1, historical=True),
        Recorded(warning, T0 + dt.timedelta(days=11), 2, historical=True),
    ]
    assert court_view(court, LATER) == {"E": EntryState.ACTIVE}
    assert judge(court, [], LATER) == []
    assert entry_states(court, LATER, LATER)["E"]["state"] == "ACTIVE"


def test_every_court_event_type_has_its_transition():
    from hub.domain.events import COURT_EVENT_TYPES

    assert set(TRANSITIONS) == set(COURT_EVENT_TYPES)
