"""What is shown of an identity value before anyone reveals it: enough to compare a record with
the customer or the document in front of you, not enough to copy.

The counter's pages and the receipt show the masked document number; the supervisor's record
page shows every identity value masked until a reveal (with its reason) shows one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext as _

from registrations.validators import HKID, HKID_RE, normalise_document_number

if TYPE_CHECKING:
    from registrations.models import Person


def mask_document_number(document_type: str, normalised: str) -> str:
    """Partly hidden form for receipts and lists."""
    value = normalise_document_number(document_type, normalised)
    if document_type == HKID:
        match = HKID_RE.fullmatch(value)
        if match:
            return f"{match.group(1)}{match.group(2)[:3]}***(*)"
    # A value this short would be shown in full by "keep 4", so hide all of it.
    if len(value) <= 4:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 4)


def mask_person_document(person: Person | None) -> str:
    """A person's document number masked, or nothing when there is none (yet)."""
    if person is None or not person.document_number:
        return ""
    return mask_document_number(person.document_type, person.document_number)


def mask_value(field: str, value, document_type: str = "") -> str:
    """A person's identity field as a supervisor sees it before revealing it."""
    if not value:
        return ""
    if field == "document_number":
        return mask_document_number(document_type, value)
    if field == "date_of_birth":
        return "****-**-** " + _("(born in the %(decade)ds)") % {"decade": value.year // 10 * 10}
    if field == "contact_number":
        return f"•••• {value[-4:]}"
    if field == "email":
        local, _at, domain = value.partition("@")
        return f"{local[:1]}•••@{domain}"
    return "•" * 6
