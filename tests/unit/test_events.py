import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from hub.domain.events import (
    COURT_EVENT_TYPES,
    FEEDBACK_EVENT_TYPES,
    EventValidationError,
    act_times,
    dated_in_future,
    parse_event,
)
from producers.parsing import iter_events_file
from tests.support import (
    COURT_TYPES,
    FEEDBACK_TYPES,
    ORG_ID,
    PERSON_ID,
    court_sample,
    every_sample,
    feedback_sample,
)


def problems(record, family=None):
    with pytest.raises(EventValidationError) as info:
        parse_event(record, family)
    return dict(info.value.problems)


def test_every_sample_validates():
    for record in every_sample():
        assert parse_event(record).event_type == record["type"]
    assert set(COURT_TYPES) == set(COURT_EVENT_TYPES)
    assert set(FEEDBACK_TYPES) == set(FEEDBACK_EVENT_TYPES)


def test_wrong_resident_id_check_character_names_field_and_expected_character():
    record = court_sample("Included")
    record["debtor"]["id_number"] = PERSON_ID[:17] + "5"
    found = problems(record)
    assert "debtor.id_number" in found
    assert "should be 'X'" in found["debtor.id_number"]


def test_org_debtor_needs_valid_credit_code_and_representative():
    record = court_sample("Included")
    record["debtor"] = {"kind": "ORG", "id_number": ORG_ID[:17] + "0", "name": "某公司"}
    found = problems(record)
    assert "should be 'L'" in found["debtor.id_number"]
    assert "legal representative" in found["debtor.legal_representative"]


def test_representative_needs_a_valid_resident_id():
    record = court_sample("Revoked")
    record = copy.deepcopy(record)
    record["debtor"]["legal_representative"]["id_number"] = "110105194912310021"
    assert "GB 11643" in problems(record)["debtor.legal_representative.id_number"]


def test_person_debtor_has_no_representative():
    record = court_sample("Included")
    record["debtor"]["legal_representative"] = {"id_number": PERSON_ID, "name": "李四"}
    assert "no legal representative" in problems(record)["debtor.legal_representative"]


def test_times_need_an_offset():
    record = court_sample("Included")
    record["occurred_at"] = "2026-01-20T10:00:00"
    assert "UTC offset" in problems(record)["occurred_at"]


def test_enums_are_closed():
    record = court_sample("Included")
    record["disclosure"] = "SECRET"
    record["grounds"] = ["CAPABLE_BUT_REFUSES", "BEING_RUDE"]
    found = problems(record)
    assert "PUBLIC" in found["disclosure"]
    assert "grounds[1]" in found


def test_unknown_type_and_family_mismatch_name_the_type_field():
    assert "unknown event type 'Listed'" in problems({**court_sample("Included"), "type": "Listed"})["type"]
    assert "unknown event type" in problems(feedback_sample("SanctionApplied"), family="court")["type"]
    assert problems({"event_id": "x"})["type"] == "required field is missing"


def test_missing_and_wrongly_typed_fields_are_named():
    record = court_sample("Included")
    del record["obligation"]
    record["period_months"] = "36"
    found = problems(record)
    assert found["obligation"] == "required field is missing"
    assert "integer" in found["period_months"]


@pytest.mark.parametrize("months", [23, 61, 0])
def test_period_months_is_null_or_24_to_60(months):
    assert "period_months" in problems({**court_sample("Included"), "period_months": months})


@pytest.mark.parametrize("months", [None, 24, 60])
def test_period_months_bounds_are_inclusive(months):
    assert parse_event({**court_sample("Included"), "period_months": months})


@pytest.mark.parametrize("reason", ["FULL_PERFORMANCE", "SETTLEMENT_PERFORMED"])
def test_performance_reasons_need_performed_at(reason):
    record = {**court_sample("Shielded"), "reason": reason, "performed_at": None}
    assert problems(record)["performed_at"] == f"required when reason is {reason}"


def test_other_shield_reasons_do_not_need_performed_at():
    record = {**court_sample("Shielded"), "reason": "CREDITOR_REQUEST", "performed_at": None}
    assert parse_event(record).performed_at is None


def test_retention_needs_legal_basis_and_end():
    record = feedback_sample("SanctionRetained")
    del record["legal_basis"]
    record["retain_until"] = None
    found = problems(record)
    assert found["legal_basis"] == "required field is missing"
    assert "retain_until" in found


def test_unknown_fields_are_rejected():
    assert problems({**court_sample("Revoked"), "note": "x"})["note"] == "unknown field"


def test_event_id_must_be_a_uuid_and_is_normalised():
    assert "not a UUID" in problems({**court_sample("Revoked"), "event_id": "42"})["event_id"]
    upper = court_sample("Revoked")["event_id"].upper()
    assert parse_event({**court_sample("Revoked"), "event_id": upper}).event_id == upper.lower()


def test_duplicate_grounds_rejected():
    record = {**court_sample("Included"), "grounds": ["EVADES_EXECUTION", "EVADES_EXECUTION"]}
    assert "twice" in problems(record)["grounds"]


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00+08:00", "1900-01-01T00:00:00+08:00"])
def test_times_outside_the_plausible_years_are_rejected(when):
    assert "outside 1949-2199" in problems({**court_sample("Revoked"), "occurred_at": when})["occurred_at"]


# -- court acts dated in the future ---------------------------------------------------------------------

CST = dt.timezone(dt.timedelta(hours=8))
PUBLISHED = dt.datetime(2026, 3, 2, 12, 0, tzinfo=CST)  # after every sample's times
TOLERANCE = dt.timedelta(minutes=5)
NEXT_YEAR = "2027-03-02T10:00:00+08:00"


def court_event(kind, **fields):
    return parse_event({**court_sample(kind), **fields})


def test_samples_are_not_dated_in_the_future():
    for kind in COURT_TYPES:
        assert dated_in_future(court_event(kind), PUBLISHED, TOLERANCE) is None, kind


def test_an_inclusion_dated_next_year_is_refused_naming_occurred_at():
    """A mistyped year would bar the debtor at once and then be judged against the agencies that obeyed."""
    name, reason = dated_in_future(court_event("Included", occurred_at=NEXT_YEAR), PUBLISHED, TOLERANCE)
    assert name == "occurred_at"
    assert NEXT_YEAR in reason and "later than its publication" in reason and "300 s" in reason
    assert "year mistyped" in reason


@pytest.mark.parametrize(
    ("kind", "field", "fields"),
    [
        ("Included", "served_at", {"served_at": NEXT_YEAR}),
        ("RiskWarningIssued", "served_at", {"served_at": NEXT_YEAR}),
        ("CorrectionRequested", "received_at", {"received_at": NEXT_YEAR}),
        ("Shielded", "performed_at", {"performed_at": NEXT_YEAR}),
        (
            "Included",
            "employer_notified.notified_at",
            {"disclosure": "RESTRICTED", "employer_notified": {"unit": "某单位", "notified_at": NEXT_YEAR}},
        ),
    ],
)
def test_any_stated_time_in_the_future_is_refused_naming_its_field(kind, field, fields):
    event = court_event(kind, **fields)
    assert dict(act_times(event))[field] == dt.datetime.fromisoformat(NEXT_YEAR)
    found = dated_in_future(event, PUBLISHED, TOLERANCE)
    assert found is not None and found[0] == field and NEXT_YEAR in found[1]


@pytest.mark.parametrize("field", ["occurred_at", "served_at"])
def test_times_within_the_clock_tolerance_are_accepted(field):
    """Clocks differ: a time up to the tolerance after publication is fine, a microsecond more is not."""
    for late, refused in [(TOLERANCE, False), (TOLERANCE + dt.timedelta(microseconds=1), True)]:
        event = court_event("Included", **{field: (PUBLISHED + late).isoformat()})
        found = dated_in_future(event, PUBLISHED, TOLERANCE)
        assert (found is not None) is refused
        if refused:
            assert found[0] == field
    assert dated_in_future(court_event("Included", occurred_at=NEXT_YEAR), PUBLISHED, dt.timedelta(days=366)) is None


def test_offsets_are_compared_as_instants():
    """12:00 in Beijing is 04:00 UTC: the publication instant written in UTC is not in the future."""
    utc = dt.datetime(2026, 3, 2, 4, 0, tzinfo=dt.UTC)  # 12:00 in Beijing: exactly the publication
    assert dated_in_future(court_event("Included", occurred_at=utc.isoformat()), PUBLISHED, dt.timedelta(0)) is None
    a_second_on = (utc + dt.timedelta(seconds=1)).isoformat()
    assert dated_in_future(court_event("Included", occurred_at=a_second_on), PUBLISHED, dt.timedelta(0)) is not None


def test_an_input_file_refuses_a_future_dated_event_with_file_and_line(tmp_path: Path):
    path = tmp_path / "court.jsonl"
    good = court_sample("Included")
    future = {**court_sample("Revoked"), "occurred_at": NEXT_YEAR}
    served_late = {**court_sample("RiskWarningIssued"), "event_id": "5d1f0a3e-0c6b-4f7e-9a0e-6d2b7f1c0a99"}
    served_late["served_at"] = NEXT_YEAR
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in (good, future, served_late)) + "\n")
    lines = list(iter_events_file(path, published_at=PUBLISHED, tolerance=TOLERANCE))
    assert [line.event is not None for line in lines] == [True, False, False]
    (problem,) = lines[1].problems
    assert str(problem).startswith(f"{path}:2: occurred_at: {NEXT_YEAR} is later than its publication")
    assert str(lines[2].problems[0]).startswith(f"{path}:3: served_at: ")
    unchecked = list(iter_events_file(path))
    assert all(line.event is not None for line in unchecked), "without published_at no time is checked"
