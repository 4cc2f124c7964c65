"""Agency decisions as pure functions of the event history (docs/design.md §6)."""

import copy
import datetime as dt
import json
import random
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from consumers import PolicyError, bank, land, load_policy, tax, transport
from hub.config import ConfigError, RetentionRuleSetting, Settings, get_settings
from hub.domain.events import CourtEvent, parse_event
from hub.domain.lifecycle import EntryState, Recorded, lives
from hub.domain.sanctions import (
    FEEDBACK_NAMESPACE,
    AgencyPolicy,
    AgencyState,
    RetentionRule,
    Status,
    decide,
    expire,
    feedback_id,
    replay,
    uuid5_text,
)
from producers.simulator import SimulationConfig, simulate
from tests.support import ORG, ORG_ID, PERSON, PERSON_ID, REP_ID, court_sample

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
CST = dt.timezone(dt.timedelta(hours=8))
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


def test_acts_published_out_of_order_take_effect_in_legal_order():
    """A shielding published before the inclusion it followed: once the inclusion arrives, both acts are
    answered in the order they happened, and the subject ends unrestricted, as the ledger and the audit see it."""
    shield_first = event("Shielded", "A", uid(1), PERSON, occurred_at="2026-03-02T11:00:00+08:00")
    late_include = event("Included", "A", uid(2), PERSON, occurred_at="2026-01-20T10:00:00+08:00")
    state = replay(bank.POLICY, [shield_first, late_include], NOW)
    assert state.restrictions(NOW) == {}
    assert [(f.type, f.court_event_id) for f in state.feedback] == [
        ("SanctionApplied", late_include.event_id),
        ("SanctionLifted", shield_first.event_id),
    ]
    # A shielding dated before the inclusion shielded nothing: the inclusion stands.
    void = event("Shielded", "V", uid(10), PERSON, occurred_at="2026-01-01T11:00:00+08:00")
    listed = event("Included", "V", uid(11), PERSON, occurred_at="2026-01-20T10:00:00+08:00")
    state = replay(bank.POLICY, [void, listed], NOW)
    assert set(state.restrictions(NOW)) == {(PERSON_ID, m) for m in bank.POLICY.person_measures}
    assert [f.type for f in state.feedback] == ["SanctionApplied"]


def test_unknown_and_repeated_acts_change_nothing():
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


@given(namespace=st.uuids(), name=st.text(), measures=st.lists(st.text(max_size=20), max_size=4))
def test_feedback_ids_are_the_rfc_name_based_uuids(namespace, name, measures):
    assert uuid5_text(namespace.bytes, name) == str(uuid.uuid5(namespace, name))
    # The same ids as the releases before, which built them with uuid.uuid5: a re-sent effect keeps its id.
    key = f"bank|{name}|SanctionApplied|{','.join(measures)}|"
    assert feedback_id("bank", name, "SanctionApplied", measures) == str(uuid.uuid5(FEEDBACK_NAMESPACE, key))


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


# -- revocation: the listing had no basis, so nothing may be held for it ----------------------------------

LOAN_KEPT = bank.POLICY.with_retention([RetentionRule("LOAN_RESTRICTED", "《商业银行法》", 365)])
SHIELDED_AT = dt.datetime(2026, 6, 1, 10, tzinfo=CST)
REVOKED_AT = dt.datetime(2026, 7, 1, 10, tzinfo=CST)


def retained_then_revoked() -> list[CourtEvent]:
    return [
        event("Included", "A", uid(1), PERSON),
        event("Shielded", "A", uid(2), PERSON, occurred_at=SHIELDED_AT.isoformat()),
        event("Revoked", "A", uid(3), PERSON, occurred_at=REVOKED_AT.isoformat()),
    ]


def test_a_revocation_ends_a_retention_at_once():
    """Right after the Revoked nothing is held, and one SanctionLifted answers the revocation with the
    retained measures: the retention is not left to run its year."""
    include, shield, revoke = retained_then_revoked()
    right_after = REVOKED_AT + dt.timedelta(minutes=1)
    retained = replay(LOAN_KEPT, [include, shield], right_after)
    assert set(retained.restrictions(right_after)) == {(PERSON_ID, "LOAN_RESTRICTED")}
    outcome = decide(LOAN_KEPT, retained.entries["A"], revoke, right_after)
    assert outcome.entry is not None and outcome.entry.restrictions() == []
    (lifted,) = outcome.feedback
    assert (lifted.type, lifted.court_event_id, lifted.measures) == (
        "SanctionLifted",
        revoke.event_id,
        ["LOAN_RESTRICTED"],
    )
    assert (outcome.entry.status, outcome.entry.retained, outcome.entry.retain_until) == (Status.REVOKED, (), None)
    assert expire(LOAN_KEPT, outcome.entry, SHIELDED_AT + dt.timedelta(days=400)) is None, "no retention left to end"


@pytest.mark.parametrize("now", [REVOKED_AT, NOW, SHIELDED_AT + dt.timedelta(days=366)], ids=str)
def test_a_revoked_retention_has_no_retention_ended_lift(now):
    """Whenever the agency processes the history, even after the retention's end date, the retained measure is
    lifted once, in answer to the revocation."""
    include, shield, revoke = retained_then_revoked()
    state = replay(LOAN_KEPT, [include, shield, revoke], now)
    assert state.restrictions(now) == {}
    assert [(f.type, f.court_event_id, tuple(f.measures)) for f in state.feedback] == [
        ("SanctionApplied", include.event_id, ("LOAN_RESTRICTED", "CREDIT_CARD_RESTRICTED")),
        ("SanctionLifted", shield.event_id, ("CREDIT_CARD_RESTRICTED",)),
        ("SanctionRetained", shield.event_id, ("LOAN_RESTRICTED",)),
        ("SanctionLifted", revoke.event_id, ("LOAN_RESTRICTED",)),
    ]
    assert state.entries["A"].status is Status.REVOKED


def test_a_revocation_after_a_plain_lift_is_answered_too():
    """Nothing was held any more, but the court learns that this unit has let go of the revoked listing."""
    include, shield, revoke = retained_then_revoked()
    state = replay(bank.POLICY, [include, shield, revoke], NOW)
    assert state.restrictions(NOW) == {}
    last = state.feedback[-1]
    assert (last.type, last.court_event_id) == ("SanctionLifted", revoke.event_id)
    assert set(last.measures) == set(bank.POLICY.person_measures)
    assert len(state.feedback) == 3 and state.entries["A"].status is Status.REVOKED


def test_a_revocation_of_an_applied_entry_leaves_it_revoked():
    state = replay(LOAN_KEPT, [event("Included", "A", uid(1), PERSON), event("Revoked", "A", uid(2), PERSON)], NOW)
    assert state.entries["A"].status is Status.REVOKED
    assert [f.type for f in state.feedback] == ["SanctionApplied", "SanctionLifted"]
    assert state.feedback[-1].measures == list(bank.POLICY.person_measures), "the retention rule does not apply"


@pytest.mark.parametrize("policy", [bank.POLICY, LOAN_KEPT], ids=["plain", "retaining"])
@pytest.mark.parametrize("shielded_first", [True, False], ids=["after-shielding", "applied"])
def test_a_second_revocation_changes_nothing(policy, shielded_first):
    include, shield, revoke = retained_then_revoked()
    again = event("Revoked", "A", uid(4), PERSON, occurred_at=(REVOKED_AT + dt.timedelta(days=3)).isoformat())
    history = [include, shield, revoke] if shielded_first else [include, revoke]
    once = replay(policy, history, NOW)
    twice = replay(policy, [*history, again], NOW)
    assert twice.restrictions(NOW) == once.restrictions(NOW) and twice.feedback == once.feedback
    assert twice.entries["A"].status is once.entries["A"].status is Status.REVOKED
    assert decide(policy, once.entries["A"], again, NOW).feedback == ()


# -- configuration of retention rules ---------------------------------------------------------------------


def rule_setting(days: int, **extra: Any) -> dict[str, Any]:
    return {"agency": "bank", "measure": "LOAN_RESTRICTED", "legal_basis": "《商业银行法》", "days": days, **extra}


def test_load_policy_refuses_a_retention_longer_than_the_maximum():
    settings_ = Settings(retention_rules=[rule_setting(366)], max_retention_days=365)
    with pytest.raises(PolicyError, match="HUB_MAX_RETENTION_DAYS") as info:
        load_policy("bank", settings_)
    assert "366 days" in str(info.value) and "(365)" in str(info.value)
    at_the_bound = load_policy("bank", Settings(retention_rules=[rule_setting(365)], max_retention_days=365))
    assert [(r.measure, r.days) for r in at_the_bound.retention] == [("LOAN_RESTRICTED", 365)]


def test_a_retention_rule_on_revocation_is_refused():
    with pytest.raises(ValidationError, match="a revoked listing had no basis"):
        RetentionRuleSetting(**rule_setting(365, on=["Revoked"]))
    with pytest.raises(ValidationError, match="a revoked listing had no basis"):
        RetentionRuleSetting(**rule_setting(365, on=["Shielded", "Revoked"]))
    assert RetentionRuleSetting(**rule_setting(365)).on == ["Shielded"]


def test_a_retention_rule_on_revocation_in_the_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv("HUB_RETENTION_RULES", json.dumps([rule_setting(30, on=["Revoked"])]))
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"HUB_RETENTION_RULES\[0\]\.on: .*revoked listing had no basis"):
            get_settings()
    finally:
        get_settings.cache_clear()


# -- properties: a revoked entry supports nothing ---------------------------------------------------------

retention_rules = st.builds(
    RetentionRule,
    measure=st.sampled_from(sorted({m for p in POLICIES for m in p.measures})),
    legal_basis=st.just("basis"),
    days=st.integers(1, 2000),
)


def with_rules(policy: AgencyPolicy, rules: list[RetentionRule]) -> AgencyPolicy:
    return policy.with_retention([r for r in rules if r.measure in policy.measures])


def assert_revoked_entries_hold_nothing(state: AgencyState, events: list[CourtEvent], now: dt.datetime) -> None:
    """Entries whose life (in legal order, as every judge folds it) ends revoked hold nothing."""
    recorded = [Recorded(e, e.occurred_at, n) for n, e in enumerate(events)]
    revoked = {entry for entry, life in lives(recorded).items() if life.state is EntryState.REVOKED}
    for entry in state.entries.values():
        if entry.entry_id in revoked:
            assert entry.restrictions() == [], entry
    held = {entry_id for entries in state.restrictions(now).values() for entry_id in entries}
    assert not held & revoked
    answers: dict[str, list[str]] = {}
    for f in state.feedback:
        answers.setdefault(f.court_event_id, []).append(f.type)
    for e in events:
        entry = state.entries.get(e.entry_id)
        if e.event_type == "Revoked" and entry is not None and entry.status is Status.REVOKED:
            assert "SanctionRetained" not in answers.get(e.event_id, []), "nothing is retained after a revocation"


def revoke_some_shieldings(records: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The simulator never revokes a shielded entry: revoke some, days to a year after the shielding."""
    extra = []
    for record in records:
        if record["type"] == "Shielded" and rng.random() < 0.5:
            revocation = copy.deepcopy(record)
            del revocation["performed_at"]
            shielded_at = dt.datetime.fromisoformat(record["occurred_at"])
            revocation.update(
                type="Revoked",
                event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, record["event_id"])),
                reason="RECONSIDERATION_UPHELD",
                occurred_at=(shielded_at + dt.timedelta(days=rng.randint(1, 400))).isoformat(),
            )
            extra.append(revocation)
    return sorted(records + extra, key=lambda r: dt.datetime.fromisoformat(r["occurred_at"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    policy=st.sampled_from(POLICIES),
    rules=st.lists(retention_rules, min_size=1, max_size=3),
    later=st.integers(0, 3000),
)
def test_no_revoked_entry_of_a_simulated_history_supports_a_restriction(seed, policy, rules, later):
    rng = random.Random(seed)
    records = revoke_some_shieldings(simulate(SimulationConfig(debtors=40, seed=seed, breach_rate=0.1)).events, rng)
    events = [parse_event(r) for r in records]
    policy = with_rules(policy, rules)
    now = NOW + dt.timedelta(days=later)
    assert_revoked_entries_hold_nothing(replay(policy, events, now), events, now)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(
        st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["Included", "Shielded", "Revoked"])), max_size=8
    ),
    policy=st.sampled_from(POLICIES),
    rules=st.lists(retention_rules, max_size=3),
    debtor=st.sampled_from([PERSON, ORG]),
    now_days=st.integers(0, 2500),
)
def test_no_revoked_entry_of_a_small_history_supports_a_restriction(kinds, policy, rules, debtor, now_days):
    """Short random histories, in any order: two entries of one debtor, acts a month apart."""
    start = dt.datetime(2026, 1, 5, 10, tzinfo=CST)
    events = [
        event(kind, entry, uid(n), debtor, occurred_at=(start + dt.timedelta(days=30 * n)).isoformat())
        for n, (entry, kind) in enumerate(kinds, start=1)
    ]
    policy = with_rules(policy, rules)
    now = start + dt.timedelta(days=now_days)
    state = replay(policy, events, now)
    assert_revoked_entries_hold_nothing(state, events, now)
