"""The app ships English and Traditional Chinese: the catalogue is complete and compiled."""

import re
from pathlib import Path

from django.utils import translation

LOCALE = Path(__file__).resolve().parent.parent / "locale" / "zh_Hant" / "LC_MESSAGES"


def entries(text: str):
    """(msgid, [msgstr...], flags) of each entry of a .po file."""
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if not line.startswith("#~")]
        flags = " ".join(line for line in lines if line.startswith("#,"))
        msgid, msgstrs, current = "", [], None
        for line in lines:
            if line.startswith("msgid "):
                current, msgid = "id", line[6:].strip().strip('"')
            elif line.startswith("msgstr"):
                current = "str"
                msgstrs.append(line.split(" ", 1)[1].strip().strip('"'))
            elif line.startswith('"') and current == "id":
                msgid += line.strip().strip('"')
            elif line.startswith('"') and current == "str":
                msgstrs[-1] += line.strip().strip('"')
        if msgid:
            yield msgid, msgstrs, flags


def test_every_message_has_a_traditional_chinese_translation():
    po = (LOCALE / "django.po").read_text(encoding="utf-8")
    missing = [msgid for msgid, msgstrs, _ in entries(po) if not all(msgstrs)]
    fuzzy = [msgid for msgid, _, flags in entries(po) if "fuzzy" in flags]
    assert missing == []
    assert fuzzy == []


def test_the_compiled_catalogue_translates_the_interface():
    with translation.override("zh-hant"):
        assert translation.gettext("Sign in") == "登入"
        assert "核對" in translation.gettext(
            "The check digit does not match this HKID number. Check the number in brackets."
        )
