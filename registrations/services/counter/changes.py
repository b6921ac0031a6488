"""Updates of information and terminations asked for at the counter of any store: recorded as
a pending change, with the store where it was asked, for a supervisor of the registration's
store to decide; nothing applies until then."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    PendingChange,
    Registration,
    Store,
    TerminationCause,
    User,
)
from registrations.policy import current_policy
from registrations.services.counter import rules
from registrations.services.counter.records import (
    registration_editor_note,
    registration_locked,
)
from registrations.services.counter.service import CHANGE_PENDING, serving_store
from registrations.services.documents import document_copy_write


def _open_for_change(
    registration: Registration, actor: User, statuses: tuple[str, ...]
) -> Registration:
    """The row locked, in one of `statuses`, with no other change waiting for a decision.

    Any store's counter may ask: the customer is served wherever they walk in."""
    registration = registration_locked(registration)
    if registration.status not in statuses:
        raise ValidationError(
            _("This change cannot be asked for on a registration in its present status."),
            code="not_approved",
        )
    if selectors.registration_change_waiting(registration=registration):
        raise ValidationError(CHANGE_PENDING, code="change_pending")
    return registration


def _pending_change_save(change: PendingChange) -> None:
    try:
        with transaction.atomic():
            change.save()
    except IntegrityError:
        # Another counter recorded a change for the same registration at the same moment.
        raise ValidationError(CHANGE_PENDING, code="change_pending") from None


@transaction.atomic
def registration_request_change(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    change: rules.ChangeDetails,
    store: Store | None = None,
) -> PendingChange:
    """Record an update of information for a supervisor of the registration's store to approve;
    nothing applies yet. `store` is where it is asked (by default the actor's first store)."""
    store = serving_store(actor, store)
    registration = _open_for_change(registration, actor, (Registration.Status.APPROVED,))
    kept, errors = rules.update_checked(
        change, policy=current_policy(), customer_kind=registration.customer.kind
    )
    if errors:
        raise ValidationError(errors)
    changed = kept.changed_fields()
    pending = PendingChange(
        registration=registration,
        kind=PendingChange.Kind.UPDATE,
        changed_fields=changed,
        new_address=kept.new_address,
        new_contact_number=kept.new_contact_number,
        new_email=kept.new_email,
        new_document_type=kept.new_document_type,
        new_document_number=kept.new_document_number,
        requested_by=actor,
        requested_at_store=store,
    )
    _pending_change_save(pending)
    registration_editor_note(registration, actor)
    fields = list(changed)
    if kept.renewed_copy is not None:
        pending.new_document_copy = document_copy_write(
            registration=registration,
            kind=DocumentCopy.Kind.IDENTITY,
            upload=kept.renewed_copy,
            actor=actor,
            origin=origin,
            replace=False,
            field="renewed_copy",
        )
        pending.save(update_fields=["new_document_copy"])
        fields.append("document_copy")
    audit_record(
        actor=actor,
        action=AuditEvent.Action.CHANGE_REQUESTED,
        origin=origin,
        registration=registration,
        fields=fields,
        details={"change": pending.pk, "at_store": store.code},
    )
    return pending


@transaction.atomic
def registration_request_termination(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    reason: str,
    cause: str = TerminationCause.CUSTOMER_REQUEST,
    store: Store | None = None,
) -> PendingChange:
    """Record a termination (deregistration) with its cause and reason, for a supervisor of
    the registration's store to approve. An approved registration, or a suspended one whose SIM
    was lost, may be terminated. The cause decides how long the record is kept afterwards."""
    store = serving_store(actor, store)
    registration = _open_for_change(
        registration, actor, (Registration.Status.APPROVED, Registration.Status.SUSPENDED)
    )
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {"termination_reason": _("Say why the registration is to be terminated.")}
        )
    if cause not in TerminationCause.values:
        raise ValidationError({"termination_cause": _("Choose why the registration ends.")})
    change = PendingChange(
        registration=registration,
        kind=PendingChange.Kind.TERMINATION,
        changed_fields=["status"],
        termination_reason=reason,
        termination_cause=cause,
        requested_by=actor,
        requested_at_store=store,
    )
    _pending_change_save(change)
    registration_editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.TERMINATION_REQUESTED,
        origin=origin,
        registration=registration,
        fields=["termination_reason"],
        details={"change": change.pk, "at_store": store.code, "cause": cause},
    )
    return change
