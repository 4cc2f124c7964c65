import pytest

from hub.domain.ids import (
    IdNumberError,
    mask_resident_id,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_uscc,
)

PUBLISHED_EXAMPLE = "11010519491231002X"
REAL_CODES = ["91110000600037341L", "9144030071526726XG", "91330100716105852F", "91350100M000100Y43"]


def test_published_resident_id_example_is_valid():
    assert validate_resident_id(PUBLISHED_EXAMPLE) == PUBLISHED_EXAMPLE
    assert validate_resident_id(PUBLISHED_EXAMPLE.lower()) == PUBLISHED_EXAMPLE


@pytest.mark.parametrize("position", range(18))
def test_changing_any_single_character_of_the_example_invalidates_it(position):
    for replacement in "0123456789X":
        if replacement == PUBLISHED_EXAMPLE[position] or (replacement == "X" and position < 17):
            continue
        changed = PUBLISHED_EXAMPLE[:position] + replacement + PUBLISHED_EXAMPLE[position + 1 :]
        with pytest.raises(IdNumberError):
            validate_resident_id(changed)


def test_wrong_check_character_names_the_expected_one():
    with pytest.raises(IdNumberError, match=r"mod 11-2 check: check character should be 'X', not '3'"):
        validate_resident_id(PUBLISHED_EXAMPLE[:17] + "3")


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("1101051949123100", "18 characters"),
        ("11010519491331002X", "not a valid birth date"),
        ("1101051949123100AX", "first 17 characters must be digits"),
        ("11010518001231002X", "implausible"),
    ],
)
def test_malformed_resident_ids_say_why(number, reason):
    with pytest.raises(IdNumberError, match=reason):
        validate_resident_id(number)


def test_check_char_computation_matches_the_standard_example():
    assert resident_id_check_char(PUBLISHED_EXAMPLE[:17]) == "X"


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_unified_social_credit_codes_are_valid(code):
    assert validate_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17]


@pytest.mark.parametrize("code", REAL_CODES)
def test_any_single_substitution_breaks_a_credit_code(code):
    for position in range(18):
        for replacement in "0123456789ABCDEFGHJKLMNPQRTUWXY":
            if replacement == code[position]:
                continue
            changed = code[:position] + replacement + code[position + 1 :]
            with pytest.raises(IdNumberError):
                validate_uscc(changed)


def test_credit_code_rejects_letters_outside_the_charset_by_name():
    with pytest.raises(IdNumberError, match=r"'I'.*outside the GB 32100 character set"):
        validate_uscc("91110000600037341I")


def test_credit_code_wrong_check_character_names_the_expected_one():
    with pytest.raises(IdNumberError, match=r"mod 31 check: check character should be 'L', not '0'"):
        validate_uscc("911100006000373410")


def test_mask_hides_birth_month_and_day():
    assert mask_resident_id("342301196405213224") == "3423011964****3224"
