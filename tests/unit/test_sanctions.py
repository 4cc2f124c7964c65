"""Agency decisions as pure functions of the event history (DESIGN §6)."""

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers import bank, land, tax, transport
from hub.domain.events import parse_event
from hub.domain.sanctions import AgencyPolicy, RetentionRule, Status, replay
from producers.simulator import SimulationConfig, simulate
from tests.support import ORG, ORG_ID, PERSON, PERSON_ID, REP_ID, court_sample

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
POLICIES = [bank.POLICY, tax.POLICY, land.POLICY, transport.POLICY]


def event(kind, entry_id, event_id, debtor=None, **fields):
    record = court_sample(kind)
    record.update(entry_id=entry_id, event_id=event_id, **fields)
    if debtor is not None:
        record["debtor"] = debtor
    return parse_event(record)


def uid(n):
    return f"00000000-0000-4000-8000-{n:012d}"


def test_two_entries_shielding_one_lifts_nothing_shielding_both_lifts_all():
    include_a = event("Included", "A", uid(1), PERSON)
    include_b = event("Included", "B", uid(2), PERSON)
    shield_a = event("Shielded", "A", uid(3), PERSON)
    shield_b = event("Shielded", "B", uid(4), PERSON)
    for policy in POLICIES:
        measures = set(policy.person_measures)
        after_one = replay(policy, [include_a, include_b, shield_a], NOW)
        assert {m for (s, m) in after_one.restrictions(NOW) if s == PERSON_ID} == measures
        assert all(entries == {"B"} for entries in after_one.restrictions(NOW).values())
        after_both = replay(policy, [include_a, include_b, shield_a, shield_b], NOW)
        assert after_both.restrictions(NOW) == {}
        kinds = [(f.type, f.entry_id) for f in after_both.feedback]
        assert kinds == [
            ("SanctionApplied", "A"),
            ("SanctionApplied", "B"),
            ("SanctionLifted", "A"),
            ("SanctionLifted", "B"),
        ]
        assert all(set(f.measures) == measures for f in after_both.feedback)


def test_org_is_restricted_by_bank_and_tax_and_its_representative_by_transport():
    included = event("Included", "O", uid(1), ORG)
    assert set(replay(bank.POLICY, [included], NOW).restrictions(NOW)) == {
        (ORG_ID, "LOAN_RESTRICTED"),
        (ORG_ID, "BOND_ISSUANCE_RESTRICTED"),
    }
    assert set(replay(tax.POLICY, [included], NOW).restrictions(NOW)) == {
        (ORG_ID, "TAX_CREDIT_DOWNGRADED"),
        (ORG_ID, "INVOICE_RESTRICTED"),
    }
    transport_state = replay(transport.POLICY, [included], NOW)
    assert set(transport_state.restrictions(NOW)) == {
        (REP_ID, "AIR_TRAVEL_RESTRICTED"),
        (REP_ID, "HIGH_SPEED_RAIL_RESTRICTED"),
    }
    applied = transport_state.feedback[0]
    assert (applied.debtor_id, applied.subject_id) == (ORG_ID, REP_ID)


def test_retention_keeps_the_measure_until_its_end_date_then_lifts_it():
    policy = bank.POLICY.with_retention([RetentionRule("LOAN_RESTRICTED", "《商业银行法》", 365)])
    shielded_at = "2026-06-01T10:00:00+08:00"
    history = [event("Included", "A", uid(1), PERSON), event("Shielded", "A", uid(2), PERSON, occurred_at=shielded_at)]
    during = replay(policy, history, NOW)
    assert set(during.restrictions(NOW)) == {(PERSON_ID, "LOAN_RESTRICTED")}
    lifted, retained = during.feedback[1:]
    assert (lifted.type, lifted.measures) == ("SanctionLifted", ["CREDIT_CARD_RESTRICTED"])
    assert (retained.type, retained.measures, retained.legal_basis) == (
        "SanctionRetained",
        ["LOAN_RESTRICTED"],
        "《商业银行法》",
    )
    assert retained.retain_until == dt.datetime(2027, 6, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    after = replay(policy, history, dt.datetime(2027, 6, 2, tzinfo=dt.UTC))
    assert after.restrictions(dt.datetime(2027, 6, 2, tzinfo=dt.UTC)) == {}
    assert after.feedback[-1].type == "SanctionLifted" and after.feedback[-1].measures == ["LOAN_RESTRICTED"]
    assert after.entries["A"].status is Status.LIFTED


def test_retention_applies_only_to_the_configured_court_act():
    policy = bank.POLICY.with_retention([RetentionRule("LOAN_RESTRICTED", "basis", 365)])
    history = [event("Included", "A", uid(1), PERSON), event("Revoked", "A", uid(2), PERSON)]
    assert replay(policy, history, NOW).restrictions(NOW) == {}


def test_unknown_and_out_of_order_events_change_nothing():
    shield_first = event("Shielded", "A", uid(1), PERSON)
    late_include = event("Included", "A", uid(2), PERSON)
    state = replay(bank.POLICY, [shield_first, late_include], NOW)
    assert state.restrictions(NOW) == {} and state.feedback == []
    twice = replay(bank.POLICY, [event("Included", "B", uid(3), PERSON), event("Included", "B", uid(4), PERSON)], NOW)
    assert [f.type for f in twice.feedback] == ["SanctionApplied"]
    warnings = [event(k, "C", uid(5 + i), PERSON) for i, k in enumerate(["RiskWarningIssued", "CorrectionRequested"])]
    assert replay(bank.POLICY, warnings, NOW).entries == {}


def test_republished_event_is_applied_once():
    include = event("Included", "A", uid(1), PERSON)
    shield = event("Shielded", "A", uid(2), PERSON)
    once = replay(bank.POLICY, [include, shield], NOW)
    again = replay(bank.POLICY, [include, include, shield, shield, include], NOW)
    assert once.entries == again.entries and once.feedback == again.feedback


def test_agency_without_measures_for_a_kind_reports_failure():
    persons_only = AgencyPolicy("clinic", ("LOAN_RESTRICTED",), ())
    state = replay(persons_only, [event("Included", "O", uid(1), ORG), event("Shielded", "O", uid(2), ORG)], NOW)
    assert [f.type for f in state.feedback] == ["SanctionFailed"]
    assert "no measures for ORG" in state.feedback[0].reason
    assert state.restrictions(NOW) == {}


def test_feedback_ids_are_derived_from_the_effect():
    history = [event("Included", "A", uid(1), PERSON), event("Shielded", "A", uid(2), PERSON)]
    first = replay(bank.POLICY, history, NOW).feedback
    later = replay(bank.POLICY, history, NOW + dt.timedelta(days=3)).feedback
    assert [f.event_id for f in first] == [f.event_id for f in later]
    assert len({f.event_id for f in first}) == len(first)
    other_agency = replay(tax.POLICY, history, NOW).feedback
    assert not {f.event_id for f in first} & {f.event_id for f in other_agency}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), policy=st.sampled_from(POLICIES))
def test_every_inclusion_and_every_release_is_answered(seed, policy):
    events = [parse_event(r) for r in simulate(SimulationConfig(debtors=80, seed=seed, breach_rate=0.1)).events]
    state = replay(policy, events, NOW)
    answers: dict[str, list[str]] = {}
    for f in state.feedback:
        answers.setdefault(f.court_event_id, []).append(f.type)
    included = {e.entry_id: e for e in events if e.event_type == "Included"}
    for e in events:
        if e.event_type == "Included" and state.entries[e.entry_id].included_event_id == e.event_id:
            assert answers[e.event_id] in (["SanctionApplied"], ["SanctionFailed"])
        if e.event_type in ("Shielded", "Revoked") and e.entry_id in included:
            closing = state.entries[e.entry_id].closing_event_id
            if closing == e.event_id:
                assert answers[e.event_id] == ["SanctionLifted"]
    active = {e.entry_id for e in state.entries.values() if e.status is Status.APPLIED}
    assert {entry for entries in state.restrictions(NOW).values() for entry in entries} == active
