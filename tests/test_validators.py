"""Document numbers and SIM identifiers: normalisation, validation, display and masking."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from registrations.masking import mask_document_number
from registrations.validators import (
    age_on,
    format_document_number,
    hkid_check_digit,
    icao_check_digit,
    luhn_is_valid,
    normalise_document_number,
    validate_business_registration,
    validate_date_of_birth,
    validate_document_number,
    validate_eid,
    validate_exit_entry_permit,
    validate_hkid,
    validate_iccid,
    validate_macao_id,
    validate_msisdn,
    validate_passport,
)

VALID_ICCID_19 = "8985200123456789017"
VALID_ICCID_20 = "89852001234567890126"
VALID_EID = "89049032123451234512345678901235"


def _error_code(excinfo: pytest.ExceptionInfo[ValidationError]) -> str | None:
    return excinfo.value.code


def _english_message(excinfo: pytest.ExceptionInfo[ValidationError]) -> str:
    with translation.override("en"):
        return excinfo.value.messages[0]


def _change_digit(digits: str, position: int) -> str:
    changed = str((int(digits[position]) + 1) % 10)
    return digits[:position] + changed + digits[position + 1 :]


# Normalisation


@pytest.mark.parametrize(
    ("document_type", "value", "expected"),
    [
        ("hkid", "a123456(3)", "A1234563"),
        ("hkid", "A 123456 3", "A1234563"),
        ("hkid", "A1234563", "A1234563"),
        ("hkid", "xa123456(8)", "XA1234568"),
        ("hkid", "A123456-3", "A1234563"),
        ("hkid", "A123456[3]", "A1234563"),
        ("hkid", "  A123456(3)\t", "A1234563"),
        ("passport", "k 1234 5678", "K12345678"),
        ("macao_id", "1234567(8)", "12345678"),
        ("exit_entry_permit", "ca 1234567", "CA1234567"),
        ("business_registration", "12345678-000-01-23-4", "12345678"),
        ("business_registration", "12345678", "12345678"),
        ("business_registration", "12345678 000 01 23 4", "12345678"),
    ],
)
def test_normalise_removes_case_spaces_brackets_and_hyphens(
    document_type: str, value: str, expected: str
) -> None:
    assert normalise_document_number(document_type, value) == expected


def test_normalise_folds_full_width_characters_from_chinese_input_methods() -> None:
    # Full-width forms are ASCII code points shifted by 0xFEE0.
    full_width = "".join(chr(ord(char) + 0xFEE0) for char in "A123456(3)")
    assert normalise_document_number("hkid", full_width) == "A1234563"


@pytest.mark.parametrize("value", ["a123456(3)", "A 123456 3", "A1234563"])
def test_normalise_is_idempotent(value: str) -> None:
    once = normalise_document_number("hkid", value)
    assert normalise_document_number("hkid", once) == once


def test_normalise_leaves_a_malformed_business_number_for_validation_to_refuse() -> None:
    assert normalise_document_number("business_registration", "1234-567") == "1234567"


# HKID


@pytest.mark.parametrize(
    ("prefix", "digits", "expected"),
    [
        ("A", "123456", "3"),
        ("XA", "123456", "8"),
        ("Z", "683365", "A"),
        ("K", "123456", "0"),
        ("AB", "987654", "3"),
    ],
)
def test_hkid_check_digit_matches_published_examples(
    prefix: str, digits: str, expected: str
) -> None:
    assert hkid_check_digit(prefix, digits) == expected


@pytest.mark.parametrize(
    ("prefix", "digits"), [("", "123456"), ("ABC", "123456"), ("A", "12345"), ("1", "123456")]
)
def test_hkid_check_digit_rejects_malformed_parts(prefix: str, digits: str) -> None:
    with pytest.raises(ValueError):
        hkid_check_digit(prefix, digits)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A123456(3)", "A1234563"),
        ("XA123456(8)", "XA1234568"),
        ("Z683365(A)", "Z683365A"),
        ("K123456(0)", "K1234560"),
        ("AB987654(3)", "AB9876543"),
        ("a123456(3)", "A1234563"),
        ("A 123456 3", "A1234563"),
        ("A1234563", "A1234563"),
        ("xa123456(8)", "XA1234568"),
        ("z683365(a)", "Z683365A"),
    ],
)
def test_valid_hkid_is_accepted_and_normalised(value: str, expected: str) -> None:
    assert validate_hkid(value) == expected


@pytest.mark.parametrize("value", ["A123456(4)", "Z683365(0)", "a1234564", "XA123456(9)"])
def test_hkid_with_wrong_check_digit_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_hkid(value)
    assert _error_code(excinfo) == "hkid_check_digit"


def test_hkid_check_digit_message_points_at_the_bracketed_digit() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_hkid("A123456(4)")
    assert "number in brackets" in _english_message(excinfo)


@pytest.mark.parametrize(
    "value",
    ["", "A12345(6)", "A1234567(8)", "ABC123456(7)", "1234567(8)", "A12B456(3)", "A123456(B)"],
)
def test_hkid_with_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_hkid(value)
    assert _error_code(excinfo) == "hkid_format"


# Passport


def test_icao_check_digit_matches_icao_9303_specimen() -> None:
    assert icao_check_digit("L898902C3") == "6"


def test_icao_check_digit_ignores_filler_padding() -> None:
    assert icao_check_digit("L898902C3") == icao_check_digit("L898902C3<")
    assert icao_check_digit("AB12345") == icao_check_digit("AB12345<<")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("L898902C3", "L898902C3"), ("k1234567", "K1234567"), ("E 12345 67", "E1234567")],
)
def test_valid_passport_number_is_accepted_and_normalised(value: str, expected: str) -> None:
    assert validate_passport(value) == expected


def test_passport_with_matching_mrz_check_digit_is_accepted() -> None:
    assert validate_passport("L898902C3", check_digit="6") == "L898902C3"


@pytest.mark.parametrize("check_digit", ["5", "0", "<"])
def test_passport_with_wrong_mrz_check_digit_is_refused(check_digit: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_passport("L898902C3", check_digit=check_digit)
    assert _error_code(excinfo) == "passport_check_digit"


@pytest.mark.parametrize("value", ["", "A1234", "A123456789", "ABCDEFGH", "A12345.6", "A12345Ä"])
def test_passport_number_with_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_passport(value)
    assert _error_code(excinfo) == "passport_format"


# Macao ID


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1234567(8)", "12345678"), ("5123456 7", "51234567"), ("71234567", "71234567")],
)
def test_valid_macao_id_is_accepted_with_or_without_brackets(value: str, expected: str) -> None:
    assert validate_macao_id(value) == expected


@pytest.mark.parametrize("value", ["21234567", "1234567", "123456789", "1234567(A)", ""])
def test_macao_id_with_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_macao_id(value)
    assert _error_code(excinfo) == "macao_id_format"


# Exit-Entry Permit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("CA1234567", "CA1234567"),
        ("c12345678", "C12345678"),
        ("CA 123 4567", "CA1234567"),
        ("W12345678", "W12345678"),
    ],
)
def test_valid_exit_entry_permit_is_accepted(value: str, expected: str) -> None:
    assert validate_exit_entry_permit(value) == expected


@pytest.mark.parametrize(
    "value", ["CA123456", "CA12345678", "WA1234567", "W1234567", "D12345678", "C-1234567", ""]
)
def test_exit_entry_permit_with_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_exit_entry_permit(value)
    assert _error_code(excinfo) == "eep_format"


# Business registration


@pytest.mark.parametrize(
    "value", ["12345678", "12345678-000-01-23-4", "1234567800001234", "12345678 000 01 23 4"]
)
def test_business_registration_returns_the_eight_digit_number(value: str) -> None:
    assert validate_business_registration(value) == "12345678"


@pytest.mark.parametrize("value", ["1234567", "123456789", "12345678-000", "1234567A", ""])
def test_business_registration_with_wrong_shape_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_business_registration(value)
    assert _error_code(excinfo) == "br_format"


# Dispatch by document type


@pytest.mark.parametrize(
    ("document_type", "value", "expected"),
    [
        ("hkid", "a123456(3)", "A1234563"),
        ("passport", "L898902C3", "L898902C3"),
        ("macao_id", "1234567(8)", "12345678"),
        ("exit_entry_permit", "CA1234567", "CA1234567"),
        ("business_registration", "12345678-000-01-23-4", "12345678"),
    ],
)
def test_validate_document_number_dispatches_by_type(
    document_type: str, value: str, expected: str
) -> None:
    assert validate_document_number(document_type, value) == expected


@pytest.mark.parametrize(
    ("document_type", "value", "code"),
    [
        ("hkid", "A123456(4)", "hkid_check_digit"),
        ("passport", "ABCDEF", "passport_format"),
        ("macao_id", "21234567", "macao_id_format"),
        ("exit_entry_permit", "X12345678", "eep_format"),
        ("business_registration", "123", "br_format"),
    ],
)
def test_validate_document_number_reports_the_type_specific_error(
    document_type: str, value: str, code: str
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_document_number(document_type, value)
    assert _error_code(excinfo) == code


@pytest.mark.parametrize("document_type", ["driving_licence", "", "HKID"])
def test_unknown_document_type_is_refused(document_type: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_document_number(document_type, "A123456(3)")
    assert _error_code(excinfo) == "unknown_document_type"


# Display and masking


@pytest.mark.parametrize(
    ("document_type", "normalised", "expected"),
    [
        ("hkid", "A1234563", "A123456(3)"),
        ("hkid", "XA1234568", "XA123456(8)"),
        ("hkid", "Z683365A", "Z683365(A)"),
        ("macao_id", "12345678", "1234567(8)"),
        ("passport", "L898902C3", "L898902C3"),
        ("exit_entry_permit", "CA1234567", "CA1234567"),
        ("business_registration", "12345678", "12345678"),
    ],
)
def test_format_document_number_brackets_the_check_digit_where_printed_so(
    document_type: str, normalised: str, expected: str
) -> None:
    assert format_document_number(document_type, normalised) == expected


@pytest.mark.parametrize(
    ("document_type", "normalised", "expected"),
    [
        ("hkid", "A1234563", "A123***(*)"),
        ("hkid", "XA1234568", "XA123***(*)"),
        ("passport", "L898902C3", "L898*****"),
        ("macao_id", "12345678", "1234****"),
        ("exit_entry_permit", "CA1234567", "CA12*****"),
        ("business_registration", "12345678", "1234****"),
    ],
)
def test_mask_document_number_hides_all_but_the_start(
    document_type: str, normalised: str, expected: str
) -> None:
    assert mask_document_number(document_type, normalised) == expected


def test_mask_hides_a_hkid_check_digit_whatever_its_value() -> None:
    assert mask_document_number("hkid", "Z683365A") == "Z683***(*)"


def test_mask_hides_a_value_too_short_to_keep_four_characters() -> None:
    assert mask_document_number("passport", "AB12") == "****"


# ICCID


@pytest.mark.parametrize("digits", [VALID_ICCID_19, VALID_ICCID_20, "79927398713", "0"])
def test_luhn_accepts_valid_numbers(digits: str) -> None:
    assert luhn_is_valid(digits)


@pytest.mark.parametrize("digits", ["79927398710", "", "8985 2001", "abc", "\uff11\uff18"])
def test_luhn_refuses_invalid_or_non_digit_input(digits: str) -> None:
    assert not luhn_is_valid(digits)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (VALID_ICCID_19, VALID_ICCID_19),
        (VALID_ICCID_20, VALID_ICCID_20),
        ("8985 2001 2345 6789 017", VALID_ICCID_19),
        ("8985-2001-2345-6789-0126", VALID_ICCID_20),
    ],
)
def test_valid_iccid_is_accepted_without_separators(value: str, expected: str) -> None:
    assert validate_iccid(value) == expected


@pytest.mark.parametrize("iccid", [VALID_ICCID_19, VALID_ICCID_20])
@pytest.mark.parametrize("position", range(2, 19))
def test_iccid_with_one_digit_changed_is_refused(iccid: str, position: int) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_iccid(_change_digit(iccid, position))
    assert _error_code(excinfo) == "iccid_check_digit"


@pytest.mark.parametrize("value", [VALID_ICCID_19[:-1], VALID_ICCID_20 + "0", "89"])
def test_iccid_with_wrong_length_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_iccid(value)
    assert _error_code(excinfo) == "iccid_length"


def test_iccid_length_message_says_how_many_digits_were_typed() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_iccid(VALID_ICCID_19[:-1])
    assert _english_message(excinfo) == "An ICCID has 19 or 20 digits; this one has 18."


def test_iccid_not_starting_with_89_is_refused() -> None:
    # Valid Luhn, right length, wrong industry identifier.
    with pytest.raises(ValidationError) as excinfo:
        validate_iccid("1234567890123456782")
    assert _error_code(excinfo) == "iccid_prefix"


@pytest.mark.parametrize("value", ["8985200123456789O17", "89852001234567890.7", ""])
def test_iccid_with_non_digits_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_iccid(value)
    assert _error_code(excinfo) == "iccid_format"


# EID


def test_valid_eid_is_accepted() -> None:
    assert validate_eid(VALID_EID) == VALID_EID


def test_eid_typed_in_groups_is_accepted() -> None:
    grouped = " ".join(VALID_EID[i : i + 4] for i in range(0, 32, 4))
    assert validate_eid(grouped) == VALID_EID


def test_eid_with_changed_last_digit_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_eid(_change_digit(VALID_EID, 31))
    assert _error_code(excinfo) == "eid_check_digits"


@pytest.mark.parametrize("position", [0, 10, 20, 30])
def test_eid_with_one_digit_changed_is_refused(position: int) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_eid(_change_digit(VALID_EID, position))
    assert _error_code(excinfo) == "eid_check_digits"


@pytest.mark.parametrize("value", [VALID_EID[:-1], VALID_EID + "1", "1"])
def test_eid_with_wrong_length_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_eid(value)
    assert _error_code(excinfo) == "eid_length"


def test_eid_length_message_says_how_many_digits_were_typed() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_eid(VALID_EID[:-1])
    assert "31" in _english_message(excinfo)


def test_eid_with_non_digits_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_eid("8904903212345123451234567890123X")
    assert _error_code(excinfo) == "eid_format"


# MSISDN


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9123 4567", "+85291234567"),
        ("91234567", "+85291234567"),
        ("+852 5123 4567", "+85251234567"),
        ("+852-9123-4567", "+85291234567"),
    ],
)
def test_valid_hong_kong_mobile_is_returned_in_e164(value: str, expected: str) -> None:
    assert validate_msisdn(value) == expected


def test_number_from_another_region_is_accepted_with_its_country_code() -> None:
    assert validate_msisdn("+853 6612 3456") == "+85366123456"


def test_default_region_can_be_changed() -> None:
    assert validate_msisdn("6612 3456", region="MO") == "+85366123456"


@pytest.mark.parametrize("value", ["1234", "", "not a number", "+852 0123 4567"])
def test_invalid_phone_number_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_msisdn(value)
    assert _error_code(excinfo) == "msisdn_invalid"


# Date of birth and age

TODAY = datetime.date(2025, 6, 15)


@pytest.mark.parametrize(
    "date_of_birth",
    [datetime.date(1990, 1, 1), TODAY, datetime.date(1895, 6, 15)],
)
def test_plausible_date_of_birth_is_accepted(date_of_birth: datetime.date) -> None:
    assert validate_date_of_birth(date_of_birth, today=TODAY) == date_of_birth


def test_date_of_birth_in_the_future_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_date_of_birth(datetime.date(2025, 6, 16), today=TODAY)
    assert _error_code(excinfo) == "dob_future"


def test_date_of_birth_more_than_130_years_ago_is_refused() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_date_of_birth(datetime.date(1895, 6, 14), today=TODAY)
    assert _error_code(excinfo) == "dob_too_old"
    assert "130" in _english_message(excinfo)


def test_date_of_birth_limit_on_29_february_falls_back_to_28_february() -> None:
    leap_day = datetime.date(2024, 2, 29)
    assert validate_date_of_birth(datetime.date(1894, 2, 28), today=leap_day)
    with pytest.raises(ValidationError):
        validate_date_of_birth(datetime.date(1894, 2, 27), today=leap_day)


def test_date_of_birth_defaults_to_checking_against_today() -> None:
    with pytest.raises(ValidationError) as excinfo:
        validate_date_of_birth(datetime.date(9999, 12, 31))
    assert _error_code(excinfo) == "dob_future"
    assert validate_date_of_birth(datetime.date(2000, 1, 1)) == datetime.date(2000, 1, 1)


@pytest.mark.parametrize(
    ("date_of_birth", "on", "expected"),
    [
        (datetime.date(2000, 6, 15), datetime.date(2025, 6, 14), 24),
        (datetime.date(2000, 6, 15), datetime.date(2025, 6, 15), 25),
        (datetime.date(2000, 12, 31), datetime.date(2001, 1, 1), 0),
        (datetime.date(2000, 2, 29), datetime.date(2018, 2, 28), 17),
        (datetime.date(2000, 2, 29), datetime.date(2018, 3, 1), 18),
        (datetime.date(2000, 2, 29), datetime.date(2020, 2, 29), 20),
        (datetime.date(2000, 1, 1), datetime.date(2000, 1, 1), 0),
    ],
)
def test_age_on_counts_full_years(
    date_of_birth: datetime.date, on: datetime.date, expected: int
) -> None:
    assert age_on(date_of_birth, on) == expected


def test_age_on_refuses_a_day_before_birth() -> None:
    with pytest.raises(ValueError):
        age_on(datetime.date(2000, 1, 2), datetime.date(2000, 1, 1))
