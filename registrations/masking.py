"""What is shown of an identity value before anyone reveals it: enough to compare a record with
the customer or the document in front of you, not enough to copy.

The counter's pages and the receipt show the masked document number; the supervisor's record
page shows every identity value masked until a reveal (with its reason) shows one.
"""

from __future__ import annotations

import unicodedata
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


# What joins the character before it: combining accents, variation selectors (an ideographic
# variation sequence picks one glyph of a character such as 葛) and the zero-width joiner.
_JOINS_PREVIOUS = {"\u200d"}


def _joins_previous(char: str) -> bool:
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or char in _JOINS_PREVIOUS
    )


def _characters(word: str) -> list[str]:
    """The characters of a word as a reader sees them: a character outside the Basic
    Multilingual Plane (𠮷) is one code point here, and any mark that follows a character stays
    with it, so a mask never cuts one in two."""
    characters: list[str] = []
    for char in word:
        if characters and (_joins_previous(char) or characters[-1].endswith("\u200d")):
            characters[-1] += char
        else:
            characters.append(char)
    return characters


def _wide(character: str) -> bool:
    return unicodedata.east_asian_width(character[0]) in ("W", "F")


def mask_name(value: str) -> str:
    """A name partly hidden, for lists where the counter recognises a customer: English names
    keep the first letter of each word (CHAN Tai Man → C••• T•• M••); Chinese names keep the
    surname and, from three characters, the last one (陳大文 → 陳•文, 陳𠮷 → 陳•). A name of
    one character is hidden entirely, so no name is ever shown in full."""
    words = []
    for word in (value or "").split():
        characters = _characters(word)
        if len(characters) <= 1:
            words.append("•")
        elif _wide(characters[0]) and len(characters) >= 3:
            words.append(characters[0] + "•" * (len(characters) - 2) + characters[-1])
        else:
            words.append(characters[0] + "•" * (len(characters) - 1))
    return " ".join(words)


def mask_mobile_number(value: str) -> str:
    """A mobile number with only its last four digits, as the customer says them back."""
    return mask_value("contact_number", value)
