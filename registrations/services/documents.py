"""Document copies: an upload kept (encrypted) on a record, each view of one audited, and the
files of deleted copies removed once the deletion commits."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registrations import documents, selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.documents import CheckedUpload
from registrations.models import AuditEvent, DocumentCopy, Registration, User
from registrations.services.counter.records import (
    registration_editable,
    registration_editor_note,
)
from registrations.storage import StorageUnavailable

logger = logging.getLogger(__name__)

# The form field of each kind of copy, for a message beside the upload.
COPY_FIELDS = {
    DocumentCopy.Kind.IDENTITY: "identity_copy",
    DocumentCopy.Kind.PROOF_OF_ADDRESS: "proof_of_address",
    DocumentCopy.Kind.REPRESENTATIVE: "representative_copy",
}
COPY_NOT_STORED = _("The document copy could not be stored; try again. Nothing you typed was lost.")


def document_files_delete(stored_names: Iterable[str]) -> None:
    """Delete the stored files of copies whose rows are gone. Callers run it on commit, so that
    a rolled-back deletion still finds its files."""
    for name in stored_names:
        documents.delete_stored(name)


def document_copy_write(
    *,
    registration: Registration,
    kind: str,
    upload: CheckedUpload,
    actor: User,
    origin: Origin,
    replace: bool,
    field: str,
) -> DocumentCopy:
    """Keep an upload as a copy of `registration`, in the caller's transaction: the caller has
    checked that the record may take it. `field` is where a storage failure is reported."""
    try:
        stored_name = documents.write_encrypted(upload.data)
    except StorageUnavailable as exc:
        # Nothing was kept; the page shows the message beside the upload with what was typed.
        logger.warning("A document copy was not stored: %s", exc)
        raise ValidationError(
            {field: ValidationError(COPY_NOT_STORED, code="storage_unavailable")}
        ) from None
    try:
        replaced: list[str] = []
        if replace:
            old = list(registration.documents.filter(kind=kind).values_list("pk", "stored_name"))
            replaced = [name for _pk, name in old]
            DocumentCopy.objects.filter(pk__in=[pk for pk, _name in old]).delete()
        copy = DocumentCopy.objects.create(
            registration=registration,
            kind=kind,
            stored_name=stored_name,
            content_type=upload.content_type,
            size=upload.size,
            uploaded_by=actor,
        )
        # An upload is activity: the draft is not stale.
        Registration.objects.filter(pk=registration.pk).update(updated_at=timezone.now())
        registration_editor_note(registration, actor)
        audit_record(
            actor=actor,
            action=AuditEvent.Action.DOCUMENT_UPLOADED,
            origin=origin,
            registration=registration,
            fields=[kind],
            details={
                "document": copy.pk,
                "kind": kind,
                "content_type": upload.content_type,
                "size": upload.size,
                "replaced": len(replaced),
            },
        )
    except BaseException:
        documents.delete_stored(stored_name)
        raise
    transaction.on_commit(functools.partial(document_files_delete, replaced))
    return copy


@transaction.atomic
def document_copy_store(
    *,
    registration: Registration,
    kind: str,
    upload: CheckedUpload,
    actor: User,
    origin: Origin = COMMAND_LINE,
) -> DocumentCopy:
    """Keep an accepted upload on a draft (or returned record), replacing the earlier copy."""
    if kind not in DocumentCopy.Kind.values:
        raise ValueError(f"Unknown document kind {kind!r}.")
    registration = registration_editable(registration, actor)
    return document_copy_write(
        registration=registration,
        kind=kind,
        upload=upload,
        actor=actor,
        origin=origin,
        replace=True,
        field=COPY_FIELDS[kind],
    )


def document_copy_read(
    *, document: DocumentCopy, actor: User, origin: Origin = COMMAND_LINE, reason: str
) -> bytes:
    """The decrypted copy, for someone allowed to see it; each view is an audit event.

    A copy whose file is missing or damaged raises documents.CopyUnavailable, and a storage that
    cannot be read now StorageUnavailable, once the attempt is recorded (with "available": false,
    and "storage": "unreachable" for the second): the audit accounts for every try, shown or not.
    """
    # Not atomic as a whole: the event of a failed attempt must commit before the error is raised.
    with transaction.atomic():
        if not selectors.document_copy_can_view(user=actor, document=document):
            raise PermissionDenied("Not allowed to view this document copy.")
        reason = reason.strip()
        if not reason:
            raise ValidationError({"reason": _("Say why you need to see this copy.")})
        details: dict = {"document": document.pk, "kind": document.kind}
        data = storage_down = None
        try:
            data = documents.read_decrypted(document.stored_name)
        except documents.CopyUnavailable:
            details["available"] = False
        except StorageUnavailable as exc:
            details |= {"available": False, "storage": "unreachable"}
            storage_down = exc
        audit_record(
            actor=actor,
            action=AuditEvent.Action.DOCUMENT_VIEWED,
            origin=origin,
            registration=document.registration,
            reason=reason,
            fields=[document.kind],
            details=details,
        )
    if storage_down is not None:
        raise storage_down
    if data is None:
        raise documents.CopyUnavailable(f"Document copy #{document.pk} cannot be read.")
    return data
