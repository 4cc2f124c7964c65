import copy

import pytest

from hub.domain.events import (
    COURT_EVENT_TYPES,
    FEEDBACK_EVENT_TYPES,
    EventValidationError,
    parse_event,
)
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
