"""The app ships English and Traditional Chinese: the catalogue is complete and compiled."""

import re
import shutil
from pathlib import Path

import polib
from django.core.management import call_command
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale" / "zh_Hant" / "LC_MESSAGES"
# Where the interface's strings are: as `make messages` reads them (not the tests, benchmarks).
SOURCES = ("registrations", "simreg", "templates")


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


def test_every_string_of_the_source_is_in_the_catalogue_translated(tmp_path, settings, monkeypatch):
    """The strings marked for translation in the code and templates, extracted as
    `make messages` does (into a copy): each has a Traditional Chinese translation that is
    neither empty nor fuzzy. A string added without one fails here, by name."""
    for name in SOURCES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "locale", tmp_path / "locale")
    monkeypatch.chdir(tmp_path)
    settings.LOCALE_PATHS = [tmp_path / "locale"]
    call_command("makemessages", locale=["zh_Hant"], no_obsolete=True, verbosity=0)
    extracted = polib.pofile(str(tmp_path / "locale" / "zh_Hant" / "LC_MESSAGES" / "django.po"))
    shipped = {entry.msgid for entry in polib.pofile(str(LOCALE / "django.po"))}
    assert len(extracted) >= 100
    missing = sorted(entry.msgid for entry in extracted if entry.msgid not in shipped)
    untranslated = sorted(entry.msgid for entry in extracted.untranslated_entries())
    fuzzy = sorted(entry.msgid for entry in extracted.fuzzy_entries())
    assert (missing, untranslated, fuzzy) == ([], [], [])
