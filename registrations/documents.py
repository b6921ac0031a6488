"""Identity-document copies: which files are accepted, and how they are kept.

A copy is checked by its content (the first bytes), never by its name or the browser's claimed
type, encrypted in memory, and only then written under a random name to the private storage (a
folder or a bucket that no URL serves: registrations.storage). Nothing here writes to the
database: services.document_copy_store does that.
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from registrations.crypto import DecryptionError, decrypt_bytes, encrypt_bytes
from registrations.storage import (
    STORAGE_ERRORS,
    StorageUnavailable,
    files_with_times,
    private_storage,
    unavailable,
)

logger = logging.getLogger(__name__)

JPEG = "image/jpeg"
PNG = "image/png"
PDF = "application/pdf"

# (leading bytes, content type): the published file signatures of the accepted formats.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"%PDF-", PDF),
)
EXTENSIONS = {JPEG: "jpg", PNG: "png", PDF: "pdf"}
ACCEPT = ",".join([JPEG, PNG, PDF])

# Copies are kept in this folder of the private storage (registrations.storage).
FOLDER = "documents"
STORED_NAME = re.compile(r"^[0-9a-f]{32}$")
# An upload writes its file just before its row commits; younger files are never orphans.
ORPHAN_GRACE = datetime.timedelta(hours=1)


class CopyUnavailable(Exception):
    """The stored file of a copy is missing or does not decrypt: nothing can be shown."""


@dataclass(frozen=True)
class CheckedUpload:
    """An accepted upload, read into memory: its bytes and the type its content shows."""

    data: bytes
    content_type: str

    @property
    def size(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        # Never the bytes: a repr can end up in a log line or an error report.
        return f"CheckedUpload({self.content_type}, {self.size} bytes)"


def sniff_content_type(data: bytes) -> str | None:
    """The content type the file's first bytes show, or None for anything not accepted."""
    for signature, content_type in SIGNATURES:
        if data.startswith(signature):
            return content_type
    return None


def check_upload(upload: UploadedFile) -> CheckedUpload:
    """Accept a JPEG, PNG or PDF within DOCUMENT_MAX_BYTES; say why otherwise."""
    limit = settings.DOCUMENT_MAX_BYTES
    # The upload handler keeps only the first DOCUMENT_MAX_BYTES but reports the real size.
    if upload.size is not None and upload.size > limit:
        raise _too_large(upload.size, limit)
    upload.seek(0)
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _too_large(len(data), limit)
    if not data:
        raise ValidationError(
            _("The file is empty. Take the photo or scan again."), code="document_empty"
        )
    content_type = sniff_content_type(data)
    if content_type is None:
        raise ValidationError(
            _(
                "This file is not a JPEG or PNG image or a PDF document (whatever its name "
                "says). Upload a photo or scan of the document."
            ),
            code="document_type",
        )
    return CheckedUpload(data=data, content_type=content_type)


def _too_large(size: int, limit: int) -> ValidationError:
    return ValidationError(
        _(
            "This file is %(size)s; the limit is %(limit)s. Take the photo at a lower "
            "resolution or scan it again."
        ),
        code="document_too_large",
        params={"size": filesizeformat(size), "limit": filesizeformat(limit)},
    )


def storage_name(stored_name: str) -> str:
    """The name of a copy's file in the private storage."""
    # The name comes from our own column, but a path is built from it: allow nothing unexpected.
    if not STORED_NAME.fullmatch(stored_name):
        raise ValueError("Not a stored document name.")
    return f"{FOLDER}/{stored_name}"


def write_encrypted(data: bytes) -> str:
    """Encrypt in memory, then write under a new random name; return the name.

    Raises StorageUnavailable when the storage cannot take it (nothing is kept then).
    """
    token = encrypt_bytes(data)
    stored_name = secrets.token_hex(16)
    name = storage_name(stored_name)
    try:
        saved = private_storage().save(name, ContentFile(token))
    except STORAGE_ERRORS as exc:
        raise unavailable(exc, "writing a document copy") from exc
    if saved != name:  # a storage that renamed the file: never expected, never kept
        delete_stored(stored_name)
        raise StorageUnavailable("The private storage stored a document copy under another name.")
    return stored_name


def read_token(stored_name: str) -> bytes:
    """The stored ciphertext of a copy; FileNotFoundError when there is none,
    StorageUnavailable when the storage cannot be read now."""
    try:
        with private_storage().open(storage_name(stored_name), "rb") as file:
            return file.read()
    except FileNotFoundError:
        raise
    except STORAGE_ERRORS as exc:
        raise unavailable(exc, "reading a document copy") from exc


def replace_token(stored_name: str, token: bytes) -> None:
    """Write new ciphertext over a copy's file (a key rotation): whole, or not at all."""
    try:
        private_storage().save(storage_name(stored_name), ContentFile(token))
    except STORAGE_ERRORS as exc:
        raise unavailable(exc, "rewriting a document copy") from exc


def read_decrypted(stored_name: str) -> bytes:
    """The copy's bytes, decrypted in memory; CopyUnavailable if its file is missing or damaged,
    StorageUnavailable if the storage cannot be read now (the copy may well be there)."""
    try:
        return decrypt_bytes(read_token(stored_name), where="a stored document copy")
    except (FileNotFoundError, DecryptionError) as exc:
        raise CopyUnavailable(f"Stored document copy {stored_name} cannot be read.") from exc


def is_stored(stored_name: str) -> bool:
    return private_storage().exists(storage_name(stored_name))


def delete_stored(stored_name: str) -> None:
    """Delete a copy's file; a storage that cannot be reached leaves it for the orphan purge."""
    try:
        private_storage().delete(storage_name(stored_name))
    except STORAGE_ERRORS as exc:
        logger.warning(
            "A document copy file could not be deleted now (%s); `purge_expired` deletes it "
            "later, once no record names it.",
            type(exc).__name__,
        )


def orphan_files(*, known: set[str], now: datetime.datetime) -> list[str]:
    """Stored names no DocumentCopy row names (left by a transaction that rolled back).

    One listing of the folder (on object storage, a page of a thousand names a request, with
    their times), compared with the names the database holds.
    """
    cutoff = now - ORPHAN_GRACE
    return [
        name
        for name, modified in files_with_times(FOLDER)
        if STORED_NAME.fullmatch(name) and name not in known and modified < cutoff
    ]
