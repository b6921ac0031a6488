"""The rules of the counter's steps, each written once: what a step's values must look like and
what the step needs to be complete.

One function per step returns the values as they are kept (numbers normalised, text trimmed)
with what is wrong or missing, keyed by the form field it belongs beside. The step's form uses
it to show every message at once, the step's save before it writes, and the submission again
on what was saved. "complete" is the Next (or Submit) button: the step's required values must
be there; without it (Save draft, Back) whatever was entered is kept as long as each value
present is well-formed.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import EmailValidator
from django.utils.translation import gettext_lazy as _

from registrations import selectors
from registrations.documents import CheckedUpload
from registrations.models import DocumentCopy, Person, Registration
from registrations.policy import MinorRule, PolicyProfile
from registrations.validators import (
    BUSINESS_REGISTRATION,
    age_on,
    validate_date_of_birth,
    validate_document_number,
    validate_eid,
    validate_iccid,
    validate_msisdn,
)

MISSING = {
    "customer_kind": _("Choose whether the customer is an individual or a company."),
    "document_type": _("Choose the identity document the customer showed."),
    "original_sighted": _("Confirm that you have seen the original document."),
    "identity_copy": _("Upload a photo or scan of the identity document."),
    "proof_of_address": _("Upload a photo or scan of the proof of address."),
    "sim_kind": _("Choose a physical SIM or an eSIM."),
    "iccid": _("Enter the ICCID printed on the SIM card."),
    "eid": _("Enter the EID shown in the device's settings."),
    "msisdn": _("Enter the mobile number of this SIM."),
    "plan": _("Choose prepaid or service plan."),
    "channel": _("Choose how the customer registers."),
    "online_reference": _("Enter the reference of the online pre-registration."),
    "name_en": _("Enter the name in English as on the document."),
    "document_number": _("Enter the document number."),
    "date_of_birth": _("Enter the date of birth."),
    "nationality": _("Choose the nationality."),
    "address": _("Enter the residential address."),
    "contact_number": _("Enter a contact number."),
}

# The fields a step always needs to be complete, which its form marks as required; the step's
# function below checks them, and the ones needed only by a choice (ICCID or EID, the online
# reference, the proof of address where the policy asks for it).
MATERIALS_NEEDED = ("original_sighted", "identity_copy", "msisdn", "plan", "proof_of_address")
IDENTITY_NEEDED = (
    "name_en",
    "document_number",
    "date_of_birth",
    "nationality",
    "address",
    "contact_number",
)

REPLACEMENT_ASKED_MESSAGE = _(
    "A replacement SIM waiting for review is this SIM. Check the number; it can be registered "
    "only if that replacement is refused."
)
CLASH_MESSAGES = {
    "iccid": _(
        "This ICCID is already in an active registration. Check the number on the SIM card; "
        "a SIM can be registered again only after its registration is terminated."
    ),
    "eid": _(
        "This EID is already in an active registration. Check the number in the device's "
        "settings; it can be registered again only after that registration is terminated."
    ),
    "msisdn": _(
        "This mobile number is already in an active registration. It can be registered again "
        "only after that registration is terminated."
    ),
}

DECLARATION_MISSING = _("The customer must accept the declaration before you submit.")

ONLINE_REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9\-/]{3,39}$")

Values = TypeVar("Values")


class Checked(NamedTuple, Generic[Values]):
    """A step's values as they are kept, and what is wrong or missing, by form field."""

    values: Values
    errors: dict


class Concealed:
    """The values of a step, as entered. Identity data must not reach a log: no value is in a
    repr (each dataclass below leaves its repr to this one with `repr=False`)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(…)"


@dataclass(frozen=True, repr=False)
class RepresentativeDetails(Concealed):
    """The confirming adult of a minor, or a company's responsible person, as entered."""

    name_en: str = ""
    name_zh: str = ""
    document_type: str = ""
    document_number: str = ""
    date_of_birth: datetime.date | None = None

    def is_blank(self) -> bool:
        return not any(
            (self.name_en.strip(), self.name_zh.strip(), self.document_number.strip())
        ) and (self.date_of_birth is None)


@dataclass(frozen=True, repr=False, kw_only=True)
class MaterialsDetails(Concealed):
    """Step 1: the customer's document, the SIM and its plan, as entered."""

    customer_kind: str
    document_type: str
    original_sighted: bool
    sim_kind: str
    iccid: str = ""
    eid: str = ""
    msisdn: str = ""
    plan: str = ""


@dataclass(frozen=True, repr=False, kw_only=True)
class IdentityDetails(Concealed):
    """Step 3: who the customer is, and their confirming adult or responsible person."""

    name_en: str = ""
    name_zh: str = ""
    document_number: str = ""
    date_of_birth: datetime.date | None = None
    nationality: str = ""
    address: str = ""
    contact_number: str = ""
    email: str = ""
    representative: RepresentativeDetails = dataclasses.field(default_factory=RepresentativeDetails)


@dataclass(frozen=True, repr=False, kw_only=True)
class ChangeDetails(Concealed):
    """An update of information: only what changes, and the copy of a renewed document."""

    new_address: str = ""
    new_contact_number: str = ""
    new_email: str = ""
    new_document_type: str = ""
    new_document_number: str = ""
    renewed_copy: CheckedUpload | None = None

    def changed_fields(self) -> list[str]:
        """The customer's fields this update gives a new value, by their names on Person."""
        return [
            name
            for name, value in (
                ("address", self.new_address),
                ("contact_number", self.new_contact_number),
                ("email", self.new_email),
                ("document_type", self.new_document_type),
                ("document_number", self.new_document_number),
            )
            if value
        ]


# Checks of one value -----------------------------------------------------------------------------


def _validated(
    errors: dict, field: str, validator: Callable[[str], str], value: str, *, required: bool
) -> str:
    """Run a validator on a non-blank value; note a missing value only when it is required."""
    value = (value or "").strip()
    if not value:
        if required:
            errors[field] = MISSING.get(field, _("This field is required."))
        return ""
    try:
        return validator(value)
    except ValidationError as exc:
        errors[field] = exc
        return ""


def _msisdn_validator(policy: PolicyProfile) -> Callable[[str], str]:
    return functools.partial(validate_msisdn, region=policy.msisdn_region)


def _document_validator(document_type: str) -> Callable[[str], str]:
    return functools.partial(validate_document_number, document_type)


def _validate_email(value: str) -> str:
    EmailValidator(message=_("Enter an e-mail address such as name@example.com."))(value)
    return value


def _date_of_birth_errors(errors: dict, field: str, value: datetime.date | None) -> None:
    if value is None:
        return
    try:
        validate_date_of_birth(value)
    except ValidationError as exc:
        errors[field] = exc


def document_type_errors(
    policy: PolicyProfile, *, customer_kind: str, document_type: str, field: str
) -> dict:
    if document_type not in policy.document_types:
        return {field: _("Choose one of the identity documents accepted here.")}
    if customer_kind == Person.Kind.COMPANY and document_type != BUSINESS_REGISTRATION:
        return {field: _("A company registers with its business registration certificate.")}
    if customer_kind == Person.Kind.INDIVIDUAL and document_type == BUSINESS_REGISTRATION:
        return {
            field: _(
                "A business registration certificate is for a company. For an individual, "
                "choose the identity document they showed."
            )
        }
    return {}


# The steps ---------------------------------------------------------------------------------------


def materials_checked(
    materials: MaterialsDetails,
    *,
    policy: PolicyProfile,
    copies: Collection[str],
    complete: bool,
) -> Checked[MaterialsDetails]:
    """Step 1. `copies`: the kinds of document copy on file, read only to complete the step."""
    errors: dict = {}
    if materials.customer_kind not in Person.Kind.values:
        errors["customer_kind"] = MISSING["customer_kind"]
    else:
        errors |= document_type_errors(
            policy,
            customer_kind=materials.customer_kind,
            document_type=materials.document_type,
            field="document_type",
        )
    if complete:
        if not materials.original_sighted:
            errors["original_sighted"] = MISSING["original_sighted"]
        if DocumentCopy.Kind.IDENTITY not in copies:
            errors["identity_copy"] = MISSING["identity_copy"]
        if policy.proof_of_address_required and DocumentCopy.Kind.PROOF_OF_ADDRESS not in copies:
            errors["proof_of_address"] = MISSING["proof_of_address"]
    iccid = eid = ""
    if materials.sim_kind == Registration.SimKind.PHYSICAL:
        iccid = _validated(errors, "iccid", validate_iccid, materials.iccid, required=complete)
    elif materials.sim_kind == Registration.SimKind.ESIM:
        eid = _validated(errors, "eid", validate_eid, materials.eid, required=complete)
    else:
        errors["sim_kind"] = MISSING["sim_kind"]
    msisdn = _validated(
        errors, "msisdn", _msisdn_validator(policy), materials.msisdn, required=complete
    )
    plan = materials.plan
    if (plan and plan not in Registration.Plan.values) or (complete and not plan):
        errors["plan"] = MISSING["plan"]
    kept = dataclasses.replace(materials, iccid=iccid, eid=eid, msisdn=msisdn)
    return Checked(kept, errors)


def channel_checked(*, channel: str, online_reference: str, complete: bool) -> Checked[str]:
    """Step 2. The values kept are the online pre-registration's reference (blank otherwise)."""
    errors: dict = {}
    reference = ""
    if channel not in Registration.Channel.values:
        errors["channel"] = MISSING["channel"]
    elif channel == Registration.Channel.ONLINE:
        reference = (online_reference or "").strip().upper()
        if not reference:
            if complete:
                errors["online_reference"] = MISSING["online_reference"]
        elif not ONLINE_REFERENCE.fullmatch(reference):
            errors["online_reference"] = _(
                "An online pre-registration reference has 4 to 40 letters, digits, hyphens or "
                "slashes. Copy it from the customer's confirmation."
            )
    return Checked(reference, errors)


def identity_checked(
    identity: IdentityDetails,
    *,
    policy: PolicyProfile,
    document_type: str,
    is_company: bool,
    complete: bool,
) -> Checked[IdentityDetails]:
    """Step 3. `document_type`: the customer's, chosen on step 1. A company has no date of
    birth or nationality. The representative is checked as far as it was entered: whether one is
    needed is the submission's question (representative_errors)."""
    errors: dict = {}
    name_en = identity.name_en.strip()
    if complete and not name_en:
        errors["name_en"] = MISSING["name_en"]
    number = _validated(
        errors,
        "document_number",
        _document_validator(document_type),
        identity.document_number,
        required=complete,
    )
    date_of_birth, nationality = None, ""
    if not is_company:
        date_of_birth = identity.date_of_birth
        if date_of_birth is None:
            if complete:
                errors["date_of_birth"] = MISSING["date_of_birth"]
        else:
            _date_of_birth_errors(errors, "date_of_birth", date_of_birth)
        nationality = identity.nationality.strip().upper()
        if (nationality and not re.fullmatch(r"[A-Z]{2}", nationality)) or (
            complete and not nationality
        ):
            errors["nationality"] = MISSING["nationality"]
    address = identity.address.strip()
    if complete and not address:
        errors["address"] = MISSING["address"]
    contact = _validated(
        errors,
        "contact_number",
        _msisdn_validator(policy),
        identity.contact_number,
        required=complete,
    )
    email = _validated(errors, "email", _validate_email, identity.email, required=False)

    representative = identity.representative
    rep_number = ""
    if not representative.is_blank():
        if representative.document_type:
            errors |= document_type_errors(
                policy,
                customer_kind=Person.Kind.INDIVIDUAL,
                document_type=representative.document_type,
                field="representative_document_type",
            )
        elif representative.document_number.strip():
            errors["representative_document_type"] = MISSING["document_type"]
        if "representative_document_type" not in errors and representative.document_type:
            rep_number = _validated(
                errors,
                "representative_document_number",
                _document_validator(representative.document_type),
                representative.document_number,
                required=False,
            )
        _date_of_birth_errors(errors, "representative_date_of_birth", representative.date_of_birth)
    kept = IdentityDetails(
        name_en=name_en,
        name_zh=identity.name_zh.strip() if policy.chinese_name_field else "",
        document_number=number,
        date_of_birth=date_of_birth,
        nationality=nationality,
        address=address,
        contact_number=contact,
        email=email,
        representative=RepresentativeDetails(
            name_en=representative.name_en.strip(),
            name_zh=representative.name_zh.strip() if policy.chinese_name_field else "",
            document_type=representative.document_type,
            document_number=rep_number,
            date_of_birth=representative.date_of_birth,
        ),
    )
    return Checked(kept, errors)


def declaration_errors(*, accepted: bool) -> dict:
    """Submitting needs the customer's declaration."""
    return {} if accepted else {"declaration_accepted": DECLARATION_MISSING}


def representative_errors(
    *,
    customer: Person,
    representative: Person | None,
    policy: PolicyProfile,
    today: datetime.date,
    copies: Collection[str],
) -> tuple[bool, dict]:
    """Whether a representative is needed at submission, and what is wrong with the one given.

    A customer under the policy's minor age needs a confirming adult with a copy of their
    document; a company needs a responsible person. `copies`: the kinds of copy on file.
    """
    if customer.kind == Person.Kind.COMPANY:
        minor = False
    else:
        minor = age_on(customer.date_of_birth, today) < policy.minor_age
        if minor and policy.minor_rule == MinorRule.GUARDIAN_NAME:
            return True, {
                "date_of_birth": _(
                    "The customer is under %(age)d. Under this policy a minor's SIM is "
                    "registered in the parent's or guardian's name: register the parent or "
                    "guardian as the customer."
                )
                % {"age": policy.minor_age}
            }
        if not minor:
            return False, {}
    rep = representative
    errors: dict = {}
    if minor:
        missing_name = _(
            "The customer is under %(age)d: enter the name of the confirming adult."
        ) % {"age": policy.minor_age}
        too_young = _("The confirming adult must be %(age)d or over.") % {"age": policy.adult_age}
    else:
        missing_name = _("A company needs a responsible person: enter their name.")
        too_young = _("The responsible person must be %(age)d or over.") % {"age": policy.adult_age}
    if rep is None or not rep.name_en:
        errors["representative_name_en"] = missing_name
    if rep is None or not rep.document_type:
        errors["representative_document_type"] = MISSING["document_type"]
    if rep is None or not rep.document_number:
        errors["representative_document_number"] = MISSING["document_number"]
    if rep is None or rep.date_of_birth is None:
        errors["representative_date_of_birth"] = MISSING["date_of_birth"]
    elif age_on(rep.date_of_birth, today) < policy.adult_age:
        errors["representative_date_of_birth"] = too_young
    if minor and DocumentCopy.Kind.REPRESENTATIVE not in copies:
        errors["representative_copy"] = _(
            "Upload a photo or scan of the confirming adult's identity document."
        )
    return True, errors


def sim_clash_errors(*, iccid: str, eid: str, msisdn: str, exclude_pk: int | None) -> dict:
    """A SIM or number that an active registration (other than this one) already holds."""
    clashes = selectors.registration_active_clashes(
        iccid=iccid, eid=eid, msisdn=msisdn, exclude_pk=exclude_pk
    )
    errors = {field: CLASH_MESSAGES[field] for field in clashes}
    asked = selectors.sim_replacement_asked_for(
        iccid=iccid, eid=eid, exclude_registration_pk=exclude_pk
    )
    for field in asked - clashes:
        errors[field] = REPLACEMENT_ASKED_MESSAGE
    return errors


# Identity consistency ----------------------------------------------------------------------------

# The identity fields compared with other registrations of the same document, in page order.
CONSISTENCY_FIELDS = ("name_en", "name_zh", "date_of_birth")


class Discrepancy(NamedTuple):
    """Which identity fields disagree with other registrations of the same document, and those
    registrations' references: names only, never a value."""

    fields: list[str]
    references: list[str]
    # How many registrations of the document were compared (for the audit of a check).
    compared: int = 0

    def __bool__(self) -> bool:
        return bool(self.fields)


def english_name_key(name: str) -> tuple[str, ...]:
    """An English name as compared: case, spacing (and commas) and the order of the words do
    not count, so "CHAN Tai Man" and "Tai Man, Chan" agree; every letter does."""
    return tuple(sorted(unicodedata.normalize("NFKC", name).casefold().replace(",", " ").split()))


def identity_values_agree(field: str, ours, theirs) -> bool:
    """Whether two values of a consistency field agree; a side without a value agrees.

    Chinese names are compared character for character: 陳𠮷 and 陳吉 are different names."""
    if ours in (None, "") or theirs in (None, ""):
        return True
    if field == "name_en":
        return english_name_key(ours) == english_name_key(theirs)
    if field == "name_zh":
        return ours.strip() == theirs.strip()
    return ours == theirs


def identity_discrepancy(
    *,
    document_type: str,
    document_number: str,
    name_en: str = "",
    name_zh: str = "",
    date_of_birth: datetime.date | None = None,
    exclude_pk: int | None = None,
) -> Discrepancy:
    """What of the name and date of birth entered disagrees with the other registrations of
    this document (submitted ones of any status whose identity data is kept).

    The regulation lets an operator register only when it has no cause to believe the
    information contradictory: a disagreement is shown to the counter and flagged to the
    supervisor. Candidates are found through the blind index and decrypted to compare.
    """
    if not document_type or not document_number:
        return Discrepancy([], [])
    ours = {"name_en": name_en, "name_zh": name_zh, "date_of_birth": date_of_birth}
    fields: set[str] = set()
    references: list[str] = []
    others = selectors.registration_list_same_document(
        document_type=document_type, document_number=document_number, exclude_pk=exclude_pk
    )
    for other in others:
        differing = {
            field
            for field in CONSISTENCY_FIELDS
            if not identity_values_agree(field, ours[field], getattr(other.customer, field))
        }
        if differing:
            fields |= differing
            references.append(other.reference)
    return Discrepancy(
        [f for f in CONSISTENCY_FIELDS if f in fields], sorted(references), len(others)
    )


# Update of information ---------------------------------------------------------------------------


def update_checked(
    change: ChangeDetails, *, policy: PolicyProfile, customer_kind: str = ""
) -> Checked[ChangeDetails]:
    """What an update must contain: at least one new value, each well-formed; a renewed
    document (its number, or a copy) with its type. `customer_kind`, when known, rules out a
    document of the wrong kind (a company renews its business registration)."""
    errors: dict = {}
    contact = _validated(
        errors,
        "new_contact_number",
        _msisdn_validator(policy),
        change.new_contact_number,
        required=False,
    )
    email = _validated(errors, "new_email", _validate_email, change.new_email, required=False)
    document_type, number = change.new_document_type, ""
    if document_type or change.new_document_number.strip() or change.renewed_copy is not None:
        if not document_type:
            errors["new_document_type"] = MISSING["document_type"]
        else:
            errors |= document_type_errors(
                policy,
                customer_kind=customer_kind,
                document_type=document_type,
                field="new_document_type",
            )
        if "new_document_type" not in errors:
            number = _validated(
                errors,
                "new_document_number",
                _document_validator(document_type),
                change.new_document_number,
                required=True,
            )
    kept = ChangeDetails(
        new_address=change.new_address.strip(),
        new_contact_number=contact,
        new_email=email,
        new_document_type=document_type if number else "",
        new_document_number=number,
        renewed_copy=change.renewed_copy,
    )
    if not errors and not kept.changed_fields():
        errors[NON_FIELD_ERRORS] = _(
            "Enter at least one new value: address, contact number, e-mail or a renewed document."
        )
    return Checked(kept, errors)
