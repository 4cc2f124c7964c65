import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.events import parse_event
from producers.simulator import INJECTABLE, SimulationConfig, simulate


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**32), breach_rate=st.sampled_from([0.0, 0.05, 0.5]))
def test_every_simulated_event_validates(seed, breach_rate):
    result = simulate(SimulationConfig(debtors=40, seed=seed, breach_rate=breach_rate))
    assert result.events
    for record in result.events:
        parse_event(json.loads(json.dumps(record, ensure_ascii=False)), family="court")


def test_same_seed_same_history_other_seed_other_history():
    a = simulate(SimulationConfig(debtors=300, seed=7))
    b = simulate(SimulationConfig(debtors=300, seed=7))
    c = simulate(SimulationConfig(debtors=300, seed=8))
    assert a.events == b.events and a.breaches == b.breaches
    assert a.events != c.events


def test_history_is_realistic():
    result = simulate(SimulationConfig(debtors=2000, seed=3, breach_rate=0.05))
    types = {r["type"] for r in result.events}
    assert types == {"RiskWarningIssued", "Included", "CorrectionRequested", "CorrectionDecided", "Shielded", "Revoked"}
    debtors = {}
    for r in result.events:
        debtors.setdefault(r["debtor"]["id_number"], set()).add(r["entry_id"])
    kinds = {r["debtor"]["kind"] for r in result.events}
    assert kinds == {"PERSON", "ORG"}
    assert sum(len(e) > 1 for e in debtors.values()) > 100, "some debtors have several entries"
    outcomes = {r.get("outcome") for r in result.events if r["type"] == "CorrectionDecided"}
    assert outcomes == {"UPHELD", "REJECTED"}
    assert any(
        r["type"] == "Included" and r["disclosure"] == "RESTRICTED" and r["employer_notified"] for r in result.events
    )
    reps = {r["debtor"]["legal_representative"]["id_number"] for r in result.events if r["debtor"]["kind"] == "ORG"}
    assert reps & set(debtors), "some legal representatives are debtors themselves"
    assert {b["rule"] for b in result.breaches} == set(INJECTABLE)


def test_events_are_in_time_order_and_each_entry_starts_with_warning_or_inclusion():
    result = simulate(SimulationConfig(debtors=500, seed=11, breach_rate=0.1))
    times = [parse_event(r).occurred_at for r in result.events]
    assert times == sorted(times)
    first = {}
    for r in result.events:
        first.setdefault(r["entry_id"], r["type"])
    orphans = {b["entry_id"] for b in result.breaches if b["rule"] == "ORPHAN_EVENT"}
    assert {t for e, t in first.items() if e not in orphans} <= {"RiskWarningIssued", "Included"}


def test_no_breaches_when_rate_is_zero():
    assert simulate(SimulationConfig(debtors=500, seed=5, breach_rate=0.0)).breaches == []
