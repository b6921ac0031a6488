"""Start-up guard: keys that cannot read the stored data stop the app with a clear message."""

from __future__ import annotations

from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection

from registrations.crypto import DecryptionError, blind_index, decrypt_text, encrypt_text

CANARY_PLAINTEXT = "simreg key canary"
CANARY_DOCUMENT = ("passport", "CANARY01")


def canary_values() -> tuple[str, str]:
    """The canary for the keys in force now: (Fernet token, 64-bit blind index)."""
    return encrypt_text(CANARY_PLAINTEXT), blind_index(*CANARY_DOCUMENT, bits=64)


def key_problems() -> list[str]:
    """What is wrong with the configured keys against the stored canary; empty when fine."""
    from registrations.models import KeyCanary

    try:
        if KeyCanary._meta.db_table not in connection.introspection.table_names():
            return []
        canary = KeyCanary.objects.order_by("-pk").first()
    except DatabaseError:
        return []
    if canary is None:
        return []
    problems = []
    try:
        if decrypt_text(canary.token, where="the key canary") != CANARY_PLAINTEXT:
            problems.append("The key canary decrypts to the wrong value.")
    except DecryptionError:
        problems.append(
            "FIELD_ENCRYPTION_KEYS cannot decrypt the data stored in this database: a key is "
            "wrong, or the key that encrypted the data was removed. Restore the keys the data "
            "was written with (put a new key first; keep the old ones until rotate_keys is done)."
        )
    if blind_index(*CANARY_DOCUMENT, bits=64) != canary.index:
        problems.append(
            "BLIND_INDEX_KEY differs from the key the stored blind indexes were computed with: "
            "look-ups and the per-person limit would miss records. Restore the old key, or run "
            "`python manage.py rotate_keys --reindex` to recompute the indexes."
        )
    return problems


@checks.register(checks.Tags.security)
def check_keys(app_configs, **kwargs) -> list[checks.CheckMessage]:
    return [
        checks.Critical(problem, id="simreg.E001", hint="See README: keys and rotation.")
        for problem in key_problems()
    ]


def assert_keys_work() -> None:
    problems = key_problems()
    if problems:
        raise ImproperlyConfigured("simreg cannot start: " + " ".join(problems))
