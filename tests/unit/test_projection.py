"""The report's projection (hub/domain/projection.py) against the whole ledger's judgement.

Two properties make the projection exact: the union of the components' judgements is the whole ledger's
judgement, and a component's judgement stays the same at every instant before its horizon.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.domain.history import Recorded, entry_states
from hub.domain.projection import Components, Judgement, first_feedback, judge_component, link, split, with_starts
from hub.domain.rules import Violation, judge, judge_until
from tests.unit.test_rules import DAY, DEADLINES, _random_history, answer, intercept, on

AGENCIES = ["bank", "tax"]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _tangled(rng: random.Random) -> tuple[list[Recorded], list[Recorded]]:
    """A random history with the links across entries the projection must follow: an answer filed under
    another entry, a block naming two entries, an event id reused under another entry."""
    court, feedback = _random_history(rng)
    positions = max(r.position for r in court + feedback) + 1
    entries = sorted({r.event.entry_id for r in court})  # type: ignore[attr-defined]
    for _ in range(rng.randint(0, 3)):
        to, other = rng.choice(court), rng.choice(entries)
        kind = rng.choice(["SanctionApplied", "SanctionLifted", "Block", "Reuse"])
        when = to.recorded_at + dt.timedelta(minutes=rng.randint(0, 3000))
        if kind == "Block":
            block = intercept(when, entry=to.event.entry_id, agency=rng.choice(AGENCIES))  # type: ignore[attr-defined]
            event = block.event.model_copy(update={"entry_ids": [to.event.entry_id, other]})  # type: ignore[attr-defined]
            feedback.append(dataclasses.replace(block, event=event))
        elif kind == "Reuse":
            event = to.event.model_copy(update={"entry_id": other})
            court.append(Recorded(event, when, positions, to.historical))
            positions += 1
        else:
            feedback.append(answer(kind, to, when, rng.choice(AGENCIES), entry_id=other))
    return court, feedback


def _key(v: Violation) -> tuple:
    return (v.due_at, v.party, v.entry_id, v.rule, v.detail)


def _by_component(court, feedback, as_of) -> dict[str, Judgement]:
    first = first_feedback(link(r) for r in feedback)
    deadlines = with_starts(DEADLINES, first)
    return {
        name: judge_component(c, f, as_of, deadlines, sorted({*AGENCIES, *first}))
        for name, (c, f) in split(court, feedback).items()
    }


@PROPERTY
@given(rng=st.randoms(use_true_random=False), as_of_days=st.integers(0, 500))
def test_the_components_judged_apart_are_the_whole_ledger_judged_at_once(rng, as_of_days):
    court, feedback = _tangled(rng)
    as_of = on(1, 5) + as_of_days * DAY
    parts = _by_component(court, feedback, as_of)
    whole = judge(court, feedback, as_of, DEADLINES, AGENCIES)
    assert sorted((v for j in parts.values() for v in j.violations), key=_key) == sorted(whole, key=_key)
    states = {e: s for j in parts.values() for e, s in j.entries.items() if s is not None}
    assert states == {e: view["state"] for e, view in entry_states(court, as_of, as_of).items()}


@PROPERTY
@given(rng=st.randoms(use_true_random=False), as_of_days=st.integers(0, 500), fraction=st.floats(0, 1))
def test_a_judgement_holds_until_its_horizon(rng, as_of_days, fraction):
    """At any instant from the judgement to just before its horizon, judging again finds the same."""
    court, feedback = _tangled(rng)
    as_of = on(1, 5) + as_of_days * DAY
    before = _by_component(court, feedback, as_of)
    for name, judged in before.items():
        if judged.horizon is None:
            later = as_of + 1000 * DAY * fraction
        elif judged.horizon == as_of:
            continue  # a deadline ending at this very instant: the judgement holds for no later one
        else:
            later = as_of + (judged.horizon - as_of - dt.timedelta(microseconds=1)) * fraction
        assert judged.holds_at(later)
        again = _by_component(court, feedback, later)[name]
        assert again.violations == judged.violations, f"{name} changed at {later} before {judged.horizon}"
        assert again.entries == judged.entries


@PROPERTY
@given(rng=st.randoms(use_true_random=False))
def test_a_judgement_without_a_horizon_never_changes_and_a_horizon_lies_ahead(rng):
    court, feedback = _tangled(rng)
    as_of = on(1, 5)
    for name, judged in _by_component(court, feedback, as_of).items():
        if judged.horizon is None:
            far = _by_component(court, feedback, as_of + 5000 * DAY)[name]
            assert far.violations == judged.violations
            assert far.entries == judged.entries
        else:
            assert judged.horizon >= as_of


@PROPERTY
@given(rng=st.randoms(use_true_random=False), cut=st.floats(0, 1))
def test_records_linked_in_two_steps_make_the_components_of_one(rng, cut):
    """As the ledger links them: the second step knows of the first only the (event id, entry) of the court
    acts it answers and of its own event ids (hub/ledger/projection.py)."""
    court, feedback = _tangled(rng)
    links = sorted((link(r) for r in court + feedback), key=lambda x: x.position)
    done, tail = links[: int(len(links) * cut)], links[int(len(links) * cut) :]
    answers = {x.court_event_id for x in tail}
    ids = {x.event_id for x in tail}
    earlier = [
        (x.event_id, x.entry_id) for x in done if (x.family == "court" and x.event_id in answers) or x.event_id in ids
    ]
    stepwise = Components()
    stepwise.add(done)
    stepwise.add(tail, earlier)
    at_once = Components()
    at_once.add(links)
    assert sorted(map(sorted, stepwise.groups().values())) == sorted(map(sorted, at_once.groups().values()))
    assert set(split(court, feedback)) == set(at_once.groups())


def test_an_act_on_time_sets_no_horizon_and_a_missing_one_does():
    """The horizon is the next deadline that can still turn: one already met cannot."""
    from tests.unit.test_rules import basic

    court = basic("E1")
    applied = answer("SanctionApplied", court[1], court[1].recorded_at + DAY / 4)
    as_of = court[1].recorded_at + DAY / 2
    due = court[1].recorded_at + DEADLINES.agency
    _violations, answered = judge_until(court, [applied], as_of, DEADLINES, ["bank"])
    _violations, waiting = judge_until(court, [], as_of, DEADLINES, ["bank"])
    assert waiting == due
    assert answered is None or answered > due


def test_an_answer_filed_under_another_entry_joins_the_component_of_the_act_it_answers():
    from tests.unit.test_rules import basic

    court = basic("E1") + basic("E2")
    included_e1 = court[1]
    feedback = [
        answer("SanctionApplied", included_e1, included_e1.recorded_at + DAY / 2, entry_id="E2"),
        answer("SanctionApplied", court[3], court[3].recorded_at + DAY / 2),
    ]
    as_of = on(6, 1)
    parts = _by_component(court, feedback, as_of)
    assert list(parts) == ["E1"]
    whole = judge(court, feedback, as_of, DEADLINES, AGENCIES)
    assert [v for v in whole if v.rule == "SANCTION_NOT_APPLIED" and v.party == "agency:bank"] == []
    assert sorted(parts["E1"].violations, key=_key) == sorted(whole, key=_key)


def test_a_block_naming_two_entries_and_a_reused_event_id_link_their_entries():
    from tests.unit.test_rules import basic

    court = basic("E1") + basic("E2") + basic("E3")
    block = intercept(on(4, 1), entry="E1")
    feedback = [dataclasses.replace(block, event=block.event.model_copy(update={"entry_ids": ["E1", "E2"]}))]
    reused = court[4].event.model_copy(update={"entry_id": "E4"})
    court.append(Recorded(reused, on(4, 2), 10**9))
    assert {name: sorted(j.entries) for name, j in _by_component(court, feedback, on(6, 1)).items()} == {
        "E1": ["E1", "E2"],
        "E3": ["E3", "E4"],
    }
