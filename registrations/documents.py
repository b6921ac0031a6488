"""Identity-document copies: which files are accepted, and how they are kept.

A copy is checked by its content (the first bytes), never by its name or the browser's claimed
type, encrypted in memory, and only then written to disk under a random name in a folder that no
URL serves. Nothing here writes to the database: services.document_copy_store does that.
"""

from __future__ import annotations

import datetime
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from registrations.crypto import DecryptionError, decrypt_bytes, encrypt_bytes

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


def documents_dir() -> Path:
    return Path(settings.PRIVATE_STORAGE_ROOT) / "documents"


def stored_path(stored_name: str) -> Path:
    # The name comes from our own column, but a path is built from it: allow nothing unexpected.
    if not STORED_NAME.fullmatch(stored_name):
        raise ValueError("Not a stored document name.")
    return documents_dir() / stored_name


def write_encrypted(data: bytes) -> str:
    """Encrypt in memory, then write under a new random name; return the name."""
    token = encrypt_bytes(data)
    folder = documents_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(stored_path(stored_name), flags, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(token)
    return stored_name


def read_decrypted(stored_name: str) -> bytes:
    """The copy's bytes, decrypted in memory; CopyUnavailable if its file is missing or damaged."""
    try:
        return decrypt_bytes(stored_path(stored_name).read_bytes(), where="a stored document copy")
    except (FileNotFoundError, DecryptionError) as exc:
        raise CopyUnavailable(f"Stored document copy {stored_name} cannot be read.") from exc


def delete_stored(stored_name: str) -> None:
    stored_path(stored_name).unlink(missing_ok=True)


def orphan_files(*, known: set[str], now: datetime.datetime) -> list[Path]:
    """Stored files no DocumentCopy row names (left by a transaction that rolled back)."""
    folder = documents_dir()
    if not folder.is_dir():
        return []
    cutoff = (now - ORPHAN_GRACE).timestamp()
    return [
        path
        for path in folder.iterdir()
        if STORED_NAME.fullmatch(path.name)
        and path.name not in known
        and path.stat().st_mtime < cutoff
    ]
