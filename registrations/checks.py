"""Start-up guard: keys that cannot read the stored data stop the app with a clear message.

The canary is a known value encrypted and blind-indexed with the keys in force when it was
written, with the BLIND_INDEX_BITS the stored indexes were computed with: a key that cannot read
it, or an index key or width that differs from it, would misread or miss the stored data.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.db import DatabaseError, connection
from django.utils.translation import gettext as _

from registrations.crypto import DecryptionError, blind_index, decrypt_text, encrypt_text
from registrations.storage import storage_problem
from simreg.startup import StartupError

CANARY_PLAINTEXT = "simreg key canary"
CANARY_DOCUMENT = ("passport", "CANARY01")
# Person.document_index holds at most 16 hexadecimal digits (64 bits); fewer than 8 bits would
# make a look-up decrypt a large part of the table.
MIN_INDEX_BITS = 8
MAX_INDEX_BITS = 64


def canary_values() -> tuple[str, str]:
    """The canary for the keys in force now: (Fernet token, 64-bit blind index)."""
    return encrypt_text(CANARY_PLAINTEXT), blind_index(*CANARY_DOCUMENT, bits=64)


def canary_fields() -> dict[str, Any]:
    """Every field of a KeyCanary written now, the width of the stored indexes included."""
    token, index = canary_values()
    return {"token": token, "index": index, "index_bits": settings.BLIND_INDEX_BITS}


def index_bits_problem() -> str | None:
    """What is wrong with BLIND_INDEX_BITS itself, or None."""
    bits = settings.BLIND_INDEX_BITS
    is_int = isinstance(bits, int) and not isinstance(bits, bool)
    if is_int and MIN_INDEX_BITS <= bits <= MAX_INDEX_BITS:
        return None
    return _(
        "BLIND_INDEX_BITS is %(bits)r: it must be a whole number from %(min)s to %(max)s (the "
        "stored index holds at most 64 bits)."
    ) % {"bits": bits, "min": MIN_INDEX_BITS, "max": MAX_INDEX_BITS}


def _latest_canary() -> dict[str, Any] | None:
    """The newest canary's token, index and index_bits (None where the column is not there
    yet: a database not migrated since it was added). Raises DatabaseError without a database.
    """
    from registrations.models import KeyCanary

    if KeyCanary._meta.db_table not in connection.introspection.table_names():
        return None
    latest = KeyCanary.objects.order_by("-pk")
    try:
        return latest.values("token", "index", "index_bits").first()
    except DatabaseError:
        canary = latest.values("token", "index").first()
        return None if canary is None else {**canary, "index_bits": None}


def _stored_index_digits() -> int | None:
    """The length of a stored blind index (None when none is stored)."""
    from registrations.models import Person

    index = (
        Person.objects.exclude(document_index="").values_list("document_index", flat=True).first()
    )
    return len(index) if index else None


def _index_bits_changed(stored_bits: int | None) -> str | None:
    bits = settings.BLIND_INDEX_BITS
    if stored_bits is not None:
        if stored_bits == bits:
            return None
        return _(
            "BLIND_INDEX_BITS changed from %(old)s to %(new)s: run `python manage.py rotate_keys "
            "--reindex` to recompute the stored blind indexes (or restore the old value); until "
            "then look-ups and the per-person limit would miss records."
        ) % {"old": stored_bits, "new": bits}
    # A canary written before it recorded the width: the stored indexes' length still tells
    # a change of BLIND_INDEX_BITS that changes the number of hexadecimal digits.
    digits = _stored_index_digits()
    if digits is None or digits == (bits + 3) // 4:
        return None
    return _(
        "BLIND_INDEX_BITS is %(new)s but the stored blind indexes have %(digits)s hexadecimal "
        "digits: run `python manage.py rotate_keys --reindex` to recompute them (or restore the "
        "old value); until then look-ups and the per-person limit would miss records."
    ) % {"new": bits, "digits": digits}


def key_problems() -> list[str]:
    """What is wrong with the configured keys against the stored canary; empty when fine."""
    bits_problem = index_bits_problem()
    problems = [bits_problem] if bits_problem else []
    try:
        canary = _latest_canary()
    except DatabaseError:
        return problems
    if canary is None:
        return problems
    try:
        if decrypt_text(canary["token"], where="the key canary") != CANARY_PLAINTEXT:
            problems.append(_("The key canary decrypts to the wrong value."))
    except DecryptionError:
        problems.append(
            _(
                "FIELD_ENCRYPTION_KEYS cannot decrypt the data stored in this database: a key is "
                "wrong, or the key that encrypted the data was removed. Restore the keys the "
                "data was written with (put a new key first; keep the old ones until rotate_keys "
                "is done)."
            )
        )
    if blind_index(*CANARY_DOCUMENT, bits=64) != canary["index"]:
        problems.append(
            _(
                "BLIND_INDEX_KEY differs from the key the stored blind indexes were computed "
                "with: look-ups and the per-person limit would miss records. Restore the old key, "
                "or run `python manage.py rotate_keys --reindex` to recompute the indexes."
            )
        )
    if bits_problem is None:
        try:
            changed = _index_bits_changed(canary["index_bits"])
        except DatabaseError:
            changed = None
        if changed:
            problems.append(changed)
    return problems


@checks.register(checks.Tags.security)
def check_keys(app_configs, **kwargs) -> list[checks.CheckMessage]:
    bits_problem = index_bits_problem()
    messages = [
        checks.Critical(problem, id="simreg.E001", hint=_("See README: keys and rotation."))
        for problem in key_problems()
        if problem != bits_problem
    ]
    if bits_problem:
        messages.insert(
            0,
            checks.Critical(
                bits_problem,
                id="simreg.E002",
                hint=_(
                    "Set BLIND_INDEX_BITS to the width the stored indexes were computed with "
                    "(32 by default)."
                ),
            ),
        )
    return messages


def assert_keys_work() -> None:
    problems = key_problems()
    if problems:
        raise StartupError(_("simreg cannot start:") + " " + " ".join(problems))


def storage_message(problem: str) -> str:
    return _("The private storage of the document copies cannot be used: %(problem)s") % {
        "problem": problem
    }


@checks.register("storage", deploy=True)
def check_private_storage(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The folder or the bucket of the document copies answers (`check --deploy`; the WSGI and
    ASGI entry points ask the same before they serve)."""
    problem = storage_problem()
    if problem is None:
        return []
    return [
        checks.Error(
            storage_message(problem),
            id="simreg.E003",
            hint=_(
                "Check SIMREG_DOCUMENT_STORAGE and, for s3, AWS_STORAGE_BUCKET_NAME (the bucket "
                "must exist), AWS_S3_ENDPOINT_URL and the credentials; for a folder, "
                "SIMREG_PRIVATE_STORAGE."
            ),
        )
    ]


def assert_storage_reachable() -> None:
    problem = storage_problem()
    if problem:
        raise StartupError(_("simreg cannot start:") + " " + storage_message(problem))
