"""What the policy no longer allows to keep: ended registrations' identity data, stale
drafts, files no row names."""

from __future__ import annotations

import datetime
import functools

from django.db import transaction
from django.utils import timezone

from registrations import documents, selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    Person,
    Registration,
)
from registrations.policy import current_policy
from registrations.services.counter import registration_discard_draft
from registrations.services.documents import document_files_delete


@transaction.atomic
def registration_purge_identity(
    *, registration: Registration, now: datetime.datetime, origin: Origin = COMMAND_LINE
) -> None:
    """Remove an ended registration's identity data once the policy no longer keeps it.

    The row stays, marked purged, with what the audit needs: reference, store, SIM, plan,
    statuses and times. People (with their blind indexes), free-text comments, the values of
    pending changes and the encrypted document files go.
    """
    registration = Registration.objects.select_for_update().get(pk=registration.pk)
    ended = {Registration.Status.TERMINATED, Registration.Status.REJECTED}
    if registration.status not in ended or registration.purged_at:
        return
    people = [pk for pk in (registration.customer_id, registration.representative_id) if pk]
    copies = list(registration.documents.filter(purged_at__isnull=True))
    Registration.objects.filter(pk=registration.pk).update(
        customer=None, representative=None, comment="", purged_at=now, updated_at=now
    )
    Person.objects.filter(pk__in=people).delete()
    registration.history.update(comment="")
    registration.changes.update(
        new_address="",
        new_contact_number="",
        new_email="",
        new_document_number="",
        termination_reason="",
        comment="",
        new_document_copy=None,
    )
    registration.documents.filter(pk__in=[c.pk for c in copies]).update(purged_at=now)
    # The outbox holds the customer's contact number and e-mail: its rows go (what was sent
    # stays in the audit log, which names no recipient).
    registration.notifications.all().delete()
    transaction.on_commit(functools.partial(document_files_delete, [c.stored_name for c in copies]))
    audit_record(
        actor=None,
        action=AuditEvent.Action.PURGED,
        origin=origin,
        registration=registration,
        fields=[
            "address",
            "comment",
            "contact_number",
            "date_of_birth",
            "document_copy",
            "document_number",
            "email",
            "name_en",
            "name_zh",
        ],
        details={
            "reason": "retention",
            "status": registration.status,
            "ended_at": (registration.terminated_at or registration.decided_at).isoformat(),
            "policy": current_policy().code,
            **({"cause": registration.termination_cause} if registration.termination_cause else {}),
            "document_copies": len(copies),
        },
    )


def registrations_purge_expired(*, now: datetime.datetime | None = None) -> int:
    """Purge every registration past retention, one transaction each; return how many."""
    now = now or timezone.now()
    count = 0
    for registration in selectors.registrations_past_retention(now=now).only("pk").iterator():
        registration_purge_identity(registration=registration, now=now)
        count += 1
    return count


def drafts_purge_stale(*, now: datetime.datetime | None = None) -> int:
    """Discard drafts older than the policy allows; return how many.

    One transaction per draft: a long purge never holds the write lock for long, and a draft
    someone resumes in the meantime is checked again under its lock and kept.
    """
    now = now or timezone.now()
    count = 0
    for pk in list(selectors.drafts_stale(now=now).values_list("pk", flat=True)):
        with transaction.atomic():
            registration = (
                selectors.drafts_stale(now=now)
                .select_for_update(of=("self",))
                .select_related("store")
                .filter(pk=pk)
                .first()
            )
            if registration is None:
                continue
            registration_discard_draft(registration=registration, actor=None, reason="stale")
            count += 1
    return count


@transaction.atomic
def document_files_purge_orphans(*, now: datetime.datetime | None = None) -> int:
    """Delete stored files no row names (left behind by a write that rolled back)."""
    now = now or timezone.now()
    orphans = documents.orphan_files(known=selectors.document_stored_names(), now=now)
    for stored_name in orphans:
        documents.delete_stored(stored_name)
    if orphans:
        audit_record(
            actor=None,
            action=AuditEvent.Action.PURGED,
            details={"object": "document_files", "reason": "orphan", "count": len(orphans)},
        )
    return len(orphans)
