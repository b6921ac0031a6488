"""Supervisors: decisions with the four-eyes rule, pending changes, reveals."""

from __future__ import annotations

import datetime
import functools

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registrations import roles, selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    Notification,
    PendingChange,
    ReasonCode,
    Registration,
    RevealReason,
    StatusChange,
    Store,
    TerminationCause,
    User,
)
from registrations.notifications import notification_queue
from registrations.services.counter.service import replacement_apply
from registrations.services.documents import document_files_delete
from registrations.services.status_counts import (
    registration_status_count_move,
    registration_status_moved,
)
from registrations.validators import (
    format_document_number,
)

# Review ------------------------------------------------------------------------------------------


class DecisionConflict(Exception):
    """Someone else decided (or the counter changed) the record first."""


REVEALABLE_FIELDS = ("document_number", "date_of_birth", "address", "contact_number", "email")


def _require_reviewer_of(user: User, store: Store, *, permission: str = roles.REVIEW) -> None:
    """Services check their caller too: a supervisor of this store, whatever the view did."""
    if (
        not roles.allows(user, permission)
        or not user.supervised_stores.filter(pk=store.pk).exists()
    ):
        raise PermissionDenied


DISCREPANCY_UNCHECKED = _(
    "This record differs from another registration of the same document: tick that you have "
    "checked the discrepancy before approving."
)
FOUR_EYES_RECORD = _(
    "Four-eyes rule: you entered, changed or submitted this record, "
    "so another supervisor must decide it."
)
FOUR_EYES_CHANGE = _(
    "Four-eyes rule: you asked for this change or entered or changed this record, "
    "so another supervisor must decide it."
)


@transaction.atomic
def registration_decide(
    *,
    registration: Registration,
    reviewer: User,
    outcome: str,
    reason_code: str = "",
    comment: str = "",
    submitted_at: datetime.datetime | None = None,
    origin: Origin = COMMAND_LINE,
    discrepancy_checked: bool = False,
) -> Registration:
    """Approve, reject or return a pending submission: one decision per submission.

    The decision is a conditional UPDATE on the row still being pending (and still being the
    submission the reviewer saw), so of two supervisors clicking at once exactly one wins.
    A submission flagged as differing from another registration of its document is approved
    only with `discrepancy_checked`: the reviewer says they looked at the discrepancy.
    """
    _require_reviewer_of(reviewer, registration.store)
    Status = Registration.Status
    if outcome not in {Status.APPROVED, Status.REJECTED, Status.RETURNED}:
        raise ValidationError({"outcome": _("Choose approve, reject or return.")})
    if outcome != Status.APPROVED and not reason_code:
        raise ValidationError({"reason_code": _("Choose a reason for rejecting or returning.")})
    if reason_code and reason_code not in ReasonCode.values:
        raise ValidationError({"reason_code": _("Choose a reason from the list.")})
    if selectors.registration_decision_barred(user=reviewer, registration=registration):
        raise ValidationError(FOUR_EYES_RECORD, code="four_eyes")
    # The flag is set at submission: the row's own, with submitted_at below pinning the round.
    flagged = bool(
        Registration.objects.filter(pk=registration.pk)
        .values_list("discrepancy_fields", flat=True)
        .first()
    )
    if flagged and outcome == Status.APPROVED and not discrepancy_checked:
        raise ValidationError(
            {"discrepancy_checked": DISCREPANCY_UNCHECKED}, code="discrepancy_unchecked"
        )
    now = timezone.now()
    pending = Registration.objects.filter(pk=registration.pk, status=Status.PENDING)
    if submitted_at is not None:
        pending = pending.filter(submitted_at=submitted_at)
    won = pending.update(
        status=outcome,
        reviewer=reviewer,
        decided_at=now,
        reason_code=reason_code if outcome != Status.APPROVED else "",
        comment=comment,
        updated_at=now,
    )
    if won != 1:
        raise DecisionConflict(
            _(
                "This submission has already been decided or changed by someone else. "
                "Reload the record to see its current state."
            )
        )
    StatusChange.objects.create(
        registration=registration,
        from_status=Status.PENDING,
        to_status=outcome,
        actor=reviewer,
        at=now,
        reason_code=reason_code if outcome != Status.APPROVED else "",
        comment=comment,
    )
    registration_status_count_move(store=registration.store_id, old=Status.PENDING, new=outcome)
    action = {
        Status.APPROVED: AuditEvent.Action.APPROVED,
        Status.REJECTED: AuditEvent.Action.REJECTED,
        Status.RETURNED: AuditEvent.Action.RETURNED,
    }[outcome]
    notification_queue(
        registration=registration,
        event=outcome,
        reason_code=reason_code if outcome != Status.APPROVED else "",
    )
    audit_record(
        actor=reviewer,
        action=action,
        origin=origin,
        registration=registration,
        reason=reason_code,
        fields=["status", "reason_code"] + (["comment"] if comment else []),
        details={
            "outcome": outcome,
            "reason_code": reason_code,
            **({"discrepancy_checked": discrepancy_checked} if flagged else {}),
        },
    )
    registration.refresh_from_db()
    return registration


@transaction.atomic
def pending_change_decide(
    *,
    change: PendingChange,
    reviewer: User,
    approve: bool,
    reason_code: str = "",
    comment: str = "",
    origin: Origin = COMMAND_LINE,
) -> PendingChange:
    """Approve or reject an update of information, a termination or a replacement SIM; it
    applies only if approved. Whichever store's counter asked, the supervisors of the
    registration's store decide: they hold the record and its copies."""
    _require_reviewer_of(reviewer, change.registration.store)
    if not approve and not reason_code:
        raise ValidationError({"reason_code": _("Choose a reason for rejecting.")})
    if reason_code and reason_code not in ReasonCode.values:
        raise ValidationError({"reason_code": _("Choose a reason from the list.")})
    if selectors.pending_change_decision_barred(user=reviewer, change=change):
        raise ValidationError(FOUR_EYES_CHANGE, code="four_eyes")
    now = timezone.now()
    won = PendingChange.objects.filter(pk=change.pk, status=PendingChange.Status.PENDING).update(
        status=PendingChange.Status.APPROVED if approve else PendingChange.Status.REJECTED,
        decided_by=reviewer,
        decided_at=now,
        reason_code=reason_code,
        comment=comment,
    )
    if won != 1:
        raise DecisionConflict(
            _("This change has already been decided by someone else. Reload to see its state.")
        )
    change.refresh_from_db()
    registration = change.registration
    if not approve and change.new_document_copy_id:
        # A renewed document that was refused is not kept as a copy of the customer's document.
        copy = change.new_document_copy
        PendingChange.objects.filter(pk=change.pk).update(new_document_copy=None)
        copy.delete()
        transaction.on_commit(functools.partial(document_files_delete, [copy.stored_name]))
    if approve:
        _pending_change_apply(change=change, reviewer=reviewer, now=now)
        action = (
            AuditEvent.Action.TERMINATED
            if change.kind == PendingChange.Kind.TERMINATION
            else AuditEvent.Action.CHANGE_APPROVED
        )
    else:
        action = AuditEvent.Action.CHANGE_REJECTED
    notification_queue(
        registration=registration,
        event=_change_notice(change, approve=approve),
        reason_code="" if approve else change.reason_code,
    )
    audit_record(
        actor=reviewer,
        action=action,
        origin=origin,
        registration=registration,
        reason=reason_code,
        fields=list(change.changed_fields),
        details={"change": change.pk, "kind": change.kind, "approved": approve},
    )
    return change


def _change_notice(change: PendingChange, *, approve: bool) -> Notification.Event:
    """What the customer is told of a decided change."""
    if not approve:
        return Notification.Event.CHANGE_REFUSED
    return {
        PendingChange.Kind.UPDATE: Notification.Event.UPDATED,
        PendingChange.Kind.TERMINATION: Notification.Event.TERMINATED,
        PendingChange.Kind.REPLACEMENT: Notification.Event.REPLACED,
    }[change.kind]


def _pending_change_apply(*, change: PendingChange, reviewer: User, now) -> None:
    """Apply an approved change: a termination (of an approved or suspended registration), a
    replacement SIM (of a suspended one), or an update of information."""
    registration = Registration.objects.select_for_update().get(pk=change.registration_id)
    Status = Registration.Status
    if change.kind == PendingChange.Kind.REPLACEMENT:
        if registration.status != Status.SUSPENDED:
            raise DecisionConflict(_("Only a suspended registration can get a replacement SIM."))
        replacement_apply(change=change, registration=registration, reviewer=reviewer, now=now)
        return
    if registration.status not in (Status.APPROVED, Status.SUSPENDED):
        raise DecisionConflict(_("Only an approved registration can be changed or terminated."))
    if change.kind == PendingChange.Kind.TERMINATION:
        # The cause (the subscriber's death among them) decides how long the record is kept.
        Registration.objects.filter(pk=registration.pk).update(
            status=Status.TERMINATED,
            terminated_at=now,
            termination_cause=change.termination_cause or TerminationCause.OTHER,
            updated_at=now,
        )
        registration_status_moved(
            registration=registration,
            old=registration.status,
            new=Status.TERMINATED,
            actor=reviewer,
            at=now,
        )
        return
    person = registration.customer
    for name in change.changed_fields:
        if name == "document_number":
            person.document_type = change.new_document_type or person.document_type
            person.document_number = change.new_document_number
        elif name in {"address", "contact_number", "email"}:
            setattr(person, name, getattr(change, f"new_{name}"))
    person.save()


@transaction.atomic
def identity_reveal(
    *,
    registration: Registration,
    user: User,
    field: str,
    reason: str,
    origin: Origin = COMMAND_LINE,
) -> str:
    """The full value of one identity field, for a coded reason that goes into the audit log."""
    _require_reviewer_of(user, registration.store, permission=roles.REVEAL)
    if field not in REVEALABLE_FIELDS:
        raise ValidationError({"field": _("This field cannot be revealed.")})
    if reason not in RevealReason.values:
        raise ValidationError({"reason": _("Choose why you need to see the full value.")})
    person = registration.customer
    if person is None or registration.purged_at:
        raise ValidationError(_("There is no identity data to reveal on this record."))
    audit_record(
        actor=user,
        action=AuditEvent.Action.REVEALED,
        origin=origin,
        registration=registration,
        reason=reason,
        fields=[field],
    )
    value = getattr(person, field)
    if field == "document_number":
        return format_document_number(person.document_type, value)
    return str(value or "")


@transaction.atomic
def pending_change_reveal(
    *,
    change: PendingChange,
    user: User,
    field: str,
    reason: str,
    origin: Origin = COMMAND_LINE,
) -> str:
    """The full new value asked for in a pending change, for a coded reason (audited)."""
    registration = change.registration
    _require_reviewer_of(user, registration.store, permission=roles.REVEAL)
    if field not in REVEALABLE_FIELDS or field not in change.changed_fields:
        raise ValidationError({"field": _("This field cannot be revealed.")})
    if reason not in RevealReason.values:
        raise ValidationError({"reason": _("Choose why you need to see the full value.")})
    if change.status != PendingChange.Status.PENDING:
        raise ValidationError(_("Only a change waiting for a decision can be revealed."))
    audit_record(
        actor=user,
        action=AuditEvent.Action.REVEALED,
        origin=origin,
        registration=registration,
        reason=reason,
        fields=[f"new_{field}"],
        details={"change": change.pk},
    )
    value = getattr(change, f"new_{field}")
    if field == "document_number":
        document_type = change.new_document_type or registration.customer.document_type
        return format_document_number(document_type, value)
    return str(value or "")
