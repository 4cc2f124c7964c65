"""The lean path from topic records to events (hub/domain/wire.py) agrees with the pydantic models: it may hand
a record to pydantic, never accept what pydantic refuses or build a different event."""

import copy
import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.codec import _measures_from_wire, default_codec
from hub.domain import wire
from hub.domain.events import EventValidationError, event_to_record, parse_event
from hub.domain.wire import event_from_record
from tests.support import ORG_ID, PERSON_ID, every_sample

CODEC = default_codec()


def wire_record(sample: dict[str, Any]) -> dict[str, Any]:
    """A sample as a topic carries it: every schema field present, optional ones as null."""
    return _measures_from_wire(CODEC.decode(CODEC.encode_event(parse_event(sample)))[1])


WIRE = [wire_record(s) for s in every_sample()]


def outcome(judge, record: dict[str, Any], family: str | None) -> tuple[str, Any]:
    try:
        event = judge(copy.deepcopy(record), family)
    except EventValidationError as exc:
        return "refused", exc.problems
    return "event", (type(event), event, json.dumps(event_to_record(event), sort_keys=True), event.model_dump())


def test_every_sample_takes_the_lean_path_and_builds_the_same_event(monkeypatch):
    expected = {id(r): outcome(parse_event, r, family_of(r)) for r in WIRE}

    def not_called(*_args, **_kwargs):
        raise AssertionError("a valid record was handed to pydantic: the lean path refused it")

    monkeypatch.setattr(wire, "parse_event", not_called)
    for record in WIRE:
        assert outcome(event_from_record, record, family_of(record)) == expected[id(record)]


def test_a_record_of_the_wrong_family_is_refused_naming_the_type():
    court = next(r for r in WIRE if "court_code" in r)
    kind, problems = outcome(event_from_record, court, "feedback")
    assert kind == "refused" and problems[0][0] == "type"


TEXT_VALUES = ["", " ", "x", " padded ", "a\x00b", "x" * 201, "y" * 2001, "\x1fz", "z\u3000", "法院", None, 7]
TIME_VALUES = [
    "2026-01-20T10:00:00+08:00",
    "2026-01-20T10:00:00",
    "2026-01-20T10:00:00Z",
    "9999-01-01T00:00:00+00:00",
    "1900-01-01T00:00:00+08:00",
    "20 Jan 2026",
    "2026-01-20T10:00:00.123456-05:30",
    None,
]
ID_VALUES = [PERSON_ID, PERSON_ID.lower(), PERSON_ID[:17] + "3", ORG_ID, ORG_ID.lower(), " " + PERSON_ID, "123", None]
UUID_VALUES = [
    "6f1c1f3e-5b7a-4c1e-9a43-1d2b9f0e7c55",
    "6F1C1F3E-5B7A-4C1E-9A43-1D2B9F0E7C55",
    "{6f1c1f3e-5b7a-4c1e-9a43-1d2b9f0e7c55}",
    "x",
    None,
]
NEAR: dict[str, list[Any]] = {  # per field, values close to valid ones: each lets one rule alone decide
    "grounds": [[], ["EVADES_EXECUTION", "EVADES_EXECUTION"], ["EVADES_EXECUTION", "lower"], ["EVADES_EXECUTION"] * 7],
    "measures": [[], ["LOAN_RESTRICTED", "X"], ["lower"], ["AIR_TRAVEL_RESTRICTED", "LOAN_RESTRICTED"], "LOAN"],
    "entry_ids": [[], [" E1"], ["E1", "E2"], ["a\x00"]],
    "period_months": [None, 23, 24, 60, 61, True, 36, "36"],
    "kind": ["PERSON", "ORG", "person"],
    "disclosure": ["PUBLIC", "RESTRICTED", "public"],
    "outcome": ["UPHELD", "REJECTED", "NO"],
    "reason": ["FULL_PERFORMANCE", "SETTLEMENT_PERFORMED", "CREDITOR_REQUEST", "WRONGFUL_INCLUSION", " x", "x"],
    "legal_representative": [
        None,
        {"id_number": PERSON_ID, "name": "李四"},
        {"id_number": PERSON_ID[:17] + "3", "name": "李四"},
        {"id_number": ORG_ID, "name": "李四"},
        {"id_number": PERSON_ID, "name": " 李四"},
        {"id_number": PERSON_ID},
    ],
    "employer_notified": [
        None,
        {"unit": "单位", "notified_at": "2026-01-20T10:00:00+08:00"},
        {"unit": "单位", "notified_at": "2026-01-20T10:00:00"},
        {"unit": "", "notified_at": "2026-01-20T10:00:00+08:00"},
    ],
    "court_code": ["J0105", "j0105", "", "X" * 17],
    "agency": ["bank", "Bank", "tax_2", ""],
}


def near(key: str) -> list[Any]:
    if key in NEAR:
        return NEAR[key]
    if key.endswith("_at") or key == "retain_until":
        return TIME_VALUES
    if key in ("id_number", "debtor_id", "subject_id"):
        return ID_VALUES
    if key in ("event_id", "court_event_id"):
        return UUID_VALUES
    return TEXT_VALUES


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            out += paths(inner, (*prefix, key))
    return out


def family_of(record: dict[str, Any]) -> str:
    return "court" if "court_code" in record else "feedback"


def single_changes():
    """Every sample with one field set to each of its near values, dropped, or joined by an unknown field."""
    for record in WIRE:
        for where in paths(record):
            for value in [*near(where[-1]), "drop"]:
                changed = copy.deepcopy(record)
                target = changed
                for key in where[:-1]:
                    target = target[key]
                if value == "drop":
                    del target[where[-1]]
                else:
                    target[where[-1]] = copy.deepcopy(value)
                yield changed
        yield {**copy.deepcopy(record), "unexpected": 1}


def test_every_single_field_change_gets_the_same_answer_on_both_paths():
    checked = accepted = 0
    for record in single_changes():
        for family in (family_of(record), None):
            lean = outcome(event_from_record, record, family)
            assert lean == outcome(parse_event, record, family), (record, family)
            checked += 1
            accepted += lean[0] == "event"
    assert checked > 2000 and accepted > 200, (checked, accepted)


@st.composite
def mutated(draw) -> dict[str, Any]:
    record = copy.deepcopy(draw(st.sampled_from(WIRE)))
    for _ in range(draw(st.integers(2, 4))):
        where = draw(st.sampled_from(paths(record)))
        target = record
        for key in where[:-1]:
            if not isinstance(target.get(key), dict):
                break
            target = target[key]
        else:
            target[where[-1]] = copy.deepcopy(draw(st.sampled_from(near(where[-1]))))
    return record


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_records_with_several_changes_get_the_same_answer_on_both_paths(record):
    family = family_of(record)
    assert outcome(event_from_record, record, family) == outcome(parse_event, record, family)


def test_times_become_aware_datetimes_and_the_debtor_a_model():
    included = next(r for r in WIRE if r["type"] == "Included")
    event = event_from_record(copy.deepcopy(included), "court")
    assert isinstance(event.occurred_at, dt.datetime) and event.occurred_at.utcoffset() is not None
    assert event.debtor.id_number == included["debtor"]["id_number"]
