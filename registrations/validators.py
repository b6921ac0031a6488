"""Validation and normalisation of identity-document numbers and SIM identifiers.

The normalised form of a document number is what gets encrypted and fed to the blind index, so
``normalise_document_number`` must stay stable: changing it would make existing records
unfindable by number.
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Callable

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

HKID = "hkid"
PASSPORT = "passport"
MACAO_ID = "macao_id"
EXIT_ENTRY_PERMIT = "exit_entry_permit"
BUSINESS_REGISTRATION = "business_registration"

MAX_AGE_YEARS = 130

# Separators staff type or copy from the card; the round brackets include the full-width ones
# produced by Chinese input methods, which NFKC folds to ASCII before this runs.
_SEPARATORS = re.compile(r"[\s()\[\]\-]+")

# An HKID: one or two prefix letters, six digits, the check character.
HKID_RE = re.compile(r"([A-Z]{1,2})([0-9]{6})([0-9A])")
_PASSPORT_RE = re.compile(r"[A-Z0-9]{6,9}")
_MACAO_ID_RE = re.compile(r"[157][0-9]{7}")
_EEP_RE = re.compile(r"C[A-Z0-9][0-9]{7}|W[0-9]{8}")
# The full certificate number is 8-3-2-2-1 digits (BR number, branch, month, year, check).
_BR_RE = re.compile(r"([0-9]{8})(?:[0-9]{8})?")


def _clean(value: str) -> str:
    """Upper case, full-width folded to ASCII, separators removed."""
    return _SEPARATORS.sub("", unicodedata.normalize("NFKC", value)).upper()


def _char_value(char: str) -> int:
    """Digits as themselves, A-Z as 10-35 (shared by the HKID and ICAO algorithms)."""
    if "0" <= char <= "9":
        return ord(char) - ord("0")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 10
    raise ValueError(f"Unexpected character {char!r}.")


def normalise_document_number(document_type: str, value: str) -> str:
    """Canonical storage form: upper case, without spaces, brackets or hyphens."""
    cleaned = _clean(value)
    if document_type == BUSINESS_REGISTRATION:
        # The first 8 digits identify the business; the rest of a certificate number changes
        # with every renewal, so it must not take part in look-ups.
        match = _BR_RE.fullmatch(cleaned)
        if match:
            return match.group(1)
    return cleaned


def hkid_check_digit(prefix: str, digits: str) -> str:
    """Check character of an HKID from its 1-2 letter prefix and 6 digits."""
    prefix = prefix.upper()
    if not re.fullmatch(r"[A-Z]{1,2}", prefix) or not re.fullmatch(r"[0-9]{6}", digits):
        raise ValueError("An HKID has 1 or 2 capital letters followed by 6 digits.")
    # A single-letter prefix is padded with a space, which counts as 36.
    values = [36 if char == " " else _char_value(char) for char in prefix.rjust(2)]
    values += [int(digit) for digit in digits]
    total = sum(value * weight for value, weight in zip(values, range(9, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 10:
        return "A"
    if check == 11:
        return "0"
    return str(check)


def validate_hkid(value: str) -> str:
    """Validate a Hong Kong Identity Card number; return it normalised."""
    normalised = normalise_document_number(HKID, value)
    match = HKID_RE.fullmatch(normalised)
    if not match:
        raise ValidationError(
            _(
                "Enter the HKID number as on the card: 1 or 2 letters, 6 digits and the "
                "check digit in brackets, for example A123456(3)."
            ),
            code="hkid_format",
        )
    prefix, digits, check = match.groups()
    if hkid_check_digit(prefix, digits) != check:
        raise ValidationError(
            _("The check digit does not match this HKID number. Check the number in brackets."),
            code="hkid_check_digit",
        )
    return normalised


def icao_check_digit(value: str) -> str:
    """ICAO 9303 check digit: weights 7-3-1, '<' = 0, A-Z = 10-35, sum mod 10."""
    total = 0
    for position, char in enumerate(value.upper()):
        char_value = 0 if char == "<" else _char_value(char)
        total += char_value * (7, 3, 1)[position % 3]
    return str(total % 10)


def validate_passport(value: str, check_digit: str | None = None) -> str:
    """Validate a passport number, and its MRZ check digit when one is given."""
    normalised = normalise_document_number(PASSPORT, value)
    if not _PASSPORT_RE.fullmatch(normalised) or not any(c.isdigit() for c in normalised):
        raise ValidationError(
            _(
                "A passport number has 6 to 9 letters and digits, with at least one digit. "
                "Copy it from the photo page."
            ),
            code="passport_format",
        )
    # The MRZ pads the number with '<' to 9 characters; '<' counts as 0, so the padding does
    # not change the check digit.
    if check_digit is not None and check_digit.strip() != icao_check_digit(normalised):
        raise ValidationError(
            _(
                "The check digit from the machine-readable zone does not match this passport "
                "number. Check both against the photo page."
            ),
            code="passport_check_digit",
        )
    return normalised


def validate_macao_id(value: str) -> str:
    """Validate a Macao resident identity card number; return it normalised."""
    normalised = normalise_document_number(MACAO_ID, value)
    # The check-digit algorithm is not published, so only the shape can be checked.
    if not _MACAO_ID_RE.fullmatch(normalised):
        raise ValidationError(
            _(
                "A Macao identity card number has 8 digits and starts with 1, 5 or 7, "
                "for example 1234567(8)."
            ),
            code="macao_id_format",
        )
    return normalised


def validate_exit_entry_permit(value: str) -> str:
    """Validate a Mainland Exit-Entry Permit for travelling to HK and Macao."""
    normalised = normalise_document_number(EXIT_ENTRY_PERMIT, value)
    if not _EEP_RE.fullmatch(normalised):
        raise ValidationError(
            _(
                "An Exit-Entry Permit number is C followed by a letter or digit and 7 digits "
                "(for example CA1234567), or, on older permits, W followed by 8 digits."
            ),
            code="eep_format",
        )
    return normalised


def validate_business_registration(value: str) -> str:
    """Validate a business registration or certificate number; return the 8-digit BR number."""
    cleaned = _clean(value)
    match = _BR_RE.fullmatch(cleaned)
    if not match:
        raise ValidationError(
            _(
                "Enter the 8-digit business registration number, or the full certificate "
                "number such as 12345678-000-01-23-4."
            ),
            code="br_format",
        )
    return match.group(1)


_DOCUMENT_VALIDATORS: dict[str, Callable[[str], str]] = {
    HKID: validate_hkid,
    PASSPORT: validate_passport,
    MACAO_ID: validate_macao_id,
    EXIT_ENTRY_PERMIT: validate_exit_entry_permit,
    BUSINESS_REGISTRATION: validate_business_registration,
}


def validate_document_number(document_type: str, value: str) -> str:
    """Validate a document number by type; return it normalised."""
    validator = _DOCUMENT_VALIDATORS.get(document_type)
    if validator is None:
        raise ValidationError(
            _("Unknown document type %(document_type)s."),
            code="unknown_document_type",
            params={"document_type": document_type},
        )
    return validator(value)


def format_document_number(document_type: str, normalised: str) -> str:
    """Display form: check digit in brackets for HKID and Macao ID, others unchanged."""
    value = normalise_document_number(document_type, normalised)
    if document_type == HKID and HKID_RE.fullmatch(value):
        return f"{value[:-1]}({value[-1]})"
    if document_type == MACAO_ID and _MACAO_ID_RE.fullmatch(value):
        return f"{value[:-1]}({value[-1]})"
    return normalised


def _luhn_sum(digits: str) -> int:
    """The Luhn sum: every second digit from the right doubled (less 9 above 9)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total


def luhn_is_valid(digits: str) -> bool:
    """True if a string of digits passes the Luhn (mod 10) check."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    return _luhn_sum(digits) % 10 == 0


def luhn_check_digit(body: str) -> str:
    """The digit that, appended to a string of digits, makes it pass the Luhn check."""
    return str(-_luhn_sum(body + "0") % 10)


def validate_iccid(value: str) -> str:
    """Validate the ICCID printed on a SIM card; return its digits."""
    iccid = re.sub(r"[\s\-]+", "", value)
    if not iccid.isascii() or not iccid.isdigit():
        raise ValidationError(
            _("An ICCID has only digits. Copy it from the SIM card or its holder."),
            code="iccid_format",
        )
    if len(iccid) not in (19, 20):
        raise ValidationError(
            _("An ICCID has 19 or 20 digits; this one has %(count)d."),
            code="iccid_length",
            params={"count": len(iccid)},
        )
    # 89 is the telecommunications industry identifier every SIM ICCID starts with.
    if not iccid.startswith("89"):
        raise ValidationError(
            _("An ICCID starts with 89. Check that this is the number from the SIM card."),
            code="iccid_prefix",
        )
    if not luhn_is_valid(iccid):
        raise ValidationError(
            _("The last digit of this ICCID does not match the others. Check for a typo."),
            code="iccid_check_digit",
        )
    return iccid


def validate_eid(value: str) -> str:
    """Validate an eSIM EID (32 digits, ISO 7064 mod 97-10); return its digits."""
    eid = re.sub(r"[\s\-]+", "", value)
    if not eid.isascii() or not eid.isdigit():
        raise ValidationError(
            _("An EID has only digits. Copy it from the device's settings."),
            code="eid_format",
        )
    if len(eid) != 32:
        raise ValidationError(
            _("An EID has 32 digits; this one has %(count)d."),
            code="eid_length",
            params={"count": len(eid)},
        )
    if int(eid) % 97 != 1:
        raise ValidationError(
            _("The last two digits of this EID do not match the others. Check for a typo."),
            code="eid_check_digits",
        )
    return eid


def validate_msisdn(value: str, region: str = "HK") -> str:
    """Validate a phone number; return it in E.164 form."""
    message = _("This is not a valid phone number. Include the country code if it is not local.")
    try:
        number = phonenumbers.parse(value, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(message, code="msisdn_invalid") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(message, code="msisdn_invalid")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _years_before(day: datetime.date, years: int) -> datetime.date:
    """The same calendar day ``years`` earlier; 29 Feb falls back to 28 Feb."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def validate_date_of_birth(
    value: datetime.date, today: datetime.date | None = None
) -> datetime.date:
    """Refuse a date of birth in the future or more than 130 years ago."""
    if today is None:
        today = timezone.localdate()
    if value > today:
        raise ValidationError(
            _("The date of birth cannot be in the future. Check the year."),
            code="dob_future",
        )
    if value < _years_before(today, MAX_AGE_YEARS):
        raise ValidationError(
            _(
                "The date of birth is more than %(years)d years ago. Check the year as "
                "printed on the document."
            ),
            code="dob_too_old",
            params={"years": MAX_AGE_YEARS},
        )
    return value


def age_on(date_of_birth: datetime.date, on: datetime.date) -> int:
    """Age in full years on a given day."""
    if on < date_of_birth:
        raise ValueError("The day is before the date of birth.")
    # Comparing (month, day) makes a 29 Feb birthday count from 1 Mar in non-leap years.
    before_birthday = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - int(before_birthday)
