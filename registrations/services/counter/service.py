"""A customer served at any store: the identity check, a lost SIM reported, a replacement SIM
asked for.

The counter of any store of the operator may serve a registration; what it asks for is decided
by the supervisors of the registration's own store, which holds the record and its copies. A
loss suspends the registration at once: a SIM in the wrong hands must stop being the customer's
straight away, so it waits for nobody. A replacement is a pending change, applied (and the old
SIM released) only when a supervisor approves it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registrations import roles, selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    Notification,
    PendingChange,
    Registration,
    Store,
    User,
)
from registrations.services.counter import rules
from registrations.services.counter.records import registration_editor_note, registration_locked
from registrations.services.status_counts import registration_status_moved
from registrations.validators import normalise_document_number, validate_eid, validate_iccid


class ServicePurpose(models.TextChoices):
    """Why a counter opens a registration for service: a code, never free text, in the audit."""

    UPDATE = "update", _("Update of information")
    TERMINATION = "termination", _("Termination")
    SIM_LOSS = "sim_loss", _("SIM lost, stolen or damaged, or a replacement SIM")
    ENQUIRY = "enquiry", _("Customer enquiry")
    SUBJECT_REPORT = "subject_report", _("The customer's own report of their data")


IDENTITY_MISMATCH = _(
    "The details entered do not match this registration. Check the customer's document and ask "
    "again; nothing was changed."
)
CHANGE_PENDING = _(
    "A change to this registration is already waiting for review. A supervisor must decide it "
    "before another one is recorded."
)
SIM_TAKEN = _("This SIM is held by another registration. Check the number on the new SIM.")
SIM_LOSS_MISSING = _("Say whether the SIM was lost, stolen or damaged.")
SIM_ASKED_FOR = _(
    "Another replacement waiting for review already asks for this SIM. Check the number on the "
    "new SIM."
)


class IdentityMismatch(ValidationError):
    """The customer's details do not match the registration: nothing may change."""


@dataclass(frozen=True)
class IdentityCheck:
    """What the customer at the counter gives to prove the registration is theirs."""

    document_type: str
    document_number: str
    name_en: str = ""
    name_zh: str = ""
    date_of_birth: datetime.date | None = None


def require_counter_at(actor: User, store: Store) -> None:
    """Counter staff working at `store`, the store where the customer is served."""
    if not (roles.allows(actor, roles.RECORD) and actor.stores.filter(pk=store.pk).exists()):
        raise PermissionDenied("Only counter staff of this store may serve a customer here.")


def serving_store(actor: User, store: Store | None) -> Store:
    """The store where the actor serves the customer: the one chosen, else their first."""
    if store is None:
        store = actor.stores.filter(is_active=True).order_by("code").first()
        if store is None:
            raise PermissionDenied("Only counter staff of a store may serve a customer.")
    require_counter_at(actor, store)
    return store


def identity_matches(registration: Registration, identity: IdentityCheck) -> bool:
    """Whether the details given are those of the registration's customer.

    The document through the blind index first (then the decrypted number, since the index is
    truncated on purpose); names and date of birth only after decrypting the customer's.
    English names ignore case, spaces and word order; Chinese names and dates are exact. At
    least one name must be given, and each name given must match.
    """
    person = registration.customer
    if person is None or registration.purged_at or not person.document_number:
        return False
    if identity.document_type != person.document_type:
        return False
    number = normalise_document_number(identity.document_type, identity.document_number)
    candidates = selectors.registration_list_by_document(
        document_type=identity.document_type,
        document_number=number,
        queryset=Registration.objects.filter(pk=registration.pk),
    )
    if not candidates:
        return False
    given_en, given_zh = identity.name_en.strip(), identity.name_zh.strip()
    if not (given_en or given_zh):
        return False
    if given_en and rules.english_name_key(given_en) != rules.english_name_key(person.name_en):
        return False
    if given_zh and given_zh != (person.name_zh or "").strip():
        return False
    # A company has no date of birth to compare.
    return person.kind != person.Kind.INDIVIDUAL or identity.date_of_birth == person.date_of_birth


def _identity_check_failed_record(
    *, registration: Registration, actor: User, origin: Origin, store: Store, page: str
) -> None:
    """A failed identity check read the customer's data: audited, with no value."""
    audit_record(
        actor=actor,
        action=AuditEvent.Action.IDENTITY_CHECK_FAILED,
        origin=origin,
        registration=registration,
        details={"page": page, "at_store": store.code},
    )


def _checked(
    fn,
    *,
    registration: Registration,
    actor: User,
    origin: Origin,
    store: Store | None,
    page: str,
    **kwargs,
):
    """Run a service in a transaction of its own; when the identity check fails, the change is
    rolled back and the failure is still audited."""
    store = serving_store(actor, store)
    try:
        with transaction.atomic():
            return fn(registration=registration, actor=actor, origin=origin, store=store, **kwargs)
    except IdentityMismatch:
        _identity_check_failed_record(
            registration=registration, actor=actor, origin=origin, store=store, page=page
        )
        raise


def _suspend(
    *, registration: Registration, actor: User, origin: Origin, store: Store, loss: str
) -> None:
    """approved -> suspended, with its history line, counts, audit event and notification."""
    now = timezone.now()
    Registration.objects.filter(pk=registration.pk).update(
        status=Registration.Status.SUSPENDED, suspended_at=now, sim_loss=loss, updated_at=now
    )
    registration.status = Registration.Status.SUSPENDED
    registration.suspended_at, registration.sim_loss = now, loss
    registration_status_moved(
        registration=registration,
        old=Registration.Status.APPROVED,
        new=Registration.Status.SUSPENDED,
        actor=actor,
        at=now,
    )
    registration_editor_note(registration, actor)
    from registrations.notifications import notification_queue

    notification_queue(registration=registration, event=Notification.Event.SUSPENDED)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.SUSPENDED,
        origin=origin,
        registration=registration,
        reason=loss,
        fields=["status", "sim_loss"],
        details={"sim_loss": loss, "at_store": store.code, "identity_check": "passed"},
    )


def _report_loss(
    *,
    registration: Registration,
    actor: User,
    origin: Origin,
    store: Store,
    identity: IdentityCheck,
    loss: str,
) -> Registration:
    registration = registration_locked(registration)
    if registration.status != Registration.Status.APPROVED:
        raise ValidationError(
            _("Only an approved registration can be suspended for a lost SIM."),
            code="not_approved",
        )
    # Every refusal before the identity check: one after it would tell whether details matched.
    if loss not in Registration.SimLoss.values:
        raise ValidationError({"sim_loss": SIM_LOSS_MISSING})
    if not identity_matches(registration, identity):
        raise IdentityMismatch(IDENTITY_MISMATCH, code="identity_mismatch")
    _suspend(registration=registration, actor=actor, origin=origin, store=store, loss=loss)
    return registration


def registration_report_sim_loss(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    store: Store | None = None,
    identity: IdentityCheck,
    loss: str,
) -> Registration:
    """Suspend an approved registration at once because its SIM was lost, stolen or damaged,
    after checking the customer's identity against the record; any store's counter may."""
    return _checked(
        _report_loss,
        registration=registration,
        actor=actor,
        origin=origin,
        store=store,
        page="loss",
        identity=identity,
        loss=loss,
    )


def replacement_sim_checked(*, sim_kind: str, iccid: str, eid: str) -> tuple[str, str, dict]:
    """The new SIM's identifier in its stored form, and the errors by field."""
    errors: dict = {}
    iccid, eid = iccid.strip(), eid.strip()
    if sim_kind == Registration.SimKind.PHYSICAL:
        eid = ""
        if not iccid:
            errors["new_iccid"] = _("Enter the ICCID printed on the new SIM card.")
        else:
            try:
                iccid = validate_iccid(iccid)
            except ValidationError as exc:
                errors["new_iccid"] = exc
    elif sim_kind == Registration.SimKind.ESIM:
        iccid = ""
        if not eid:
            errors["new_eid"] = _("Enter the EID shown in the device's settings.")
        else:
            try:
                eid = validate_eid(eid)
            except ValidationError as exc:
                errors["new_eid"] = exc
    else:
        errors["new_sim_kind"] = _("Choose a physical SIM or an eSIM.")
    return iccid, eid, errors


def _sim_clashes(*, iccid: str, eid: str, exclude_registration: int | None = None) -> dict:
    """Field errors for a new SIM that an active registration holds or another pending
    replacement asks for."""
    errors = {}
    field = "new_iccid" if iccid else "new_eid"
    if selectors.registration_active_clashes(iccid=iccid, eid=eid):
        errors[field] = SIM_TAKEN
    elif selectors.sim_replacement_asked_for(
        iccid=iccid, eid=eid, exclude_registration_pk=exclude_registration
    ):
        errors[field] = SIM_ASKED_FOR
    return errors


def _request_replacement(
    *,
    registration: Registration,
    actor: User,
    origin: Origin,
    store: Store,
    identity: IdentityCheck,
    sim_kind: str,
    iccid: str,
    eid: str,
    loss: str,
) -> PendingChange:
    registration = registration_locked(registration)
    Status = Registration.Status
    if registration.status not in (Status.APPROVED, Status.SUSPENDED):
        raise ValidationError(
            _("Only an approved or suspended registration can get a replacement SIM."),
            code="not_active",
        )
    if selectors.registration_change_waiting(registration=registration):
        raise ValidationError(CHANGE_PENDING, code="change_pending")
    iccid, eid, errors = replacement_sim_checked(sim_kind=sim_kind, iccid=iccid, eid=eid)
    if registration.status == Status.APPROVED and loss not in Registration.SimLoss.values:
        errors["sim_loss"] = SIM_LOSS_MISSING
    # Every other refusal before the identity check: a refusal after it would tell the clerk
    # that the details matched, with nothing in the log.
    if not errors:
        errors = _sim_clashes(iccid=iccid, eid=eid)
    if errors:
        raise ValidationError(errors)
    if not identity_matches(registration, identity):
        raise IdentityMismatch(IDENTITY_MISMATCH, code="identity_mismatch")
    if registration.status == Status.APPROVED:
        _suspend(registration=registration, actor=actor, origin=origin, store=store, loss=loss)
    field = "iccid" if iccid else "eid"
    change = PendingChange(
        registration=registration,
        kind=PendingChange.Kind.REPLACEMENT,
        changed_fields=["sim_kind", field],
        new_sim_kind=sim_kind,
        new_iccid=iccid,
        new_eid=eid,
        requested_by=actor,
        requested_at_store=store,
    )
    try:
        with transaction.atomic():
            change.save()
    except IntegrityError:
        # Another counter asked for the same new SIM, or for a change to this registration,
        # at the same moment: the one that committed first keeps it.
        raise ValidationError(
            _sim_clashes(iccid=iccid, eid=eid) or CHANGE_PENDING, code="change_pending"
        ) from None
    registration_editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.REPLACEMENT_REQUESTED,
        origin=origin,
        registration=registration,
        fields=["sim_kind", field],
        details={
            "change": change.pk,
            "at_store": store.code,
            "new_sim_kind": sim_kind,
            "identity_check": "passed",
        },
    )
    return change


def registration_request_replacement(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    store: Store | None = None,
    identity: IdentityCheck,
    sim_kind: str,
    iccid: str = "",
    eid: str = "",
    loss: str = "",
) -> PendingChange:
    """Ask for a new SIM on the same mobile number, after the customer's identity is checked.

    On an approved registration the loss (`loss`) is reported in the same step, suspending it.
    The new SIM may be held by no active registration and asked for by no other pending
    replacement; the old one stays the registration's until a supervisor of the record's store
    approves.
    """
    return _checked(
        _request_replacement,
        registration=registration,
        actor=actor,
        origin=origin,
        store=store,
        page="replace",
        identity=identity,
        sim_kind=sim_kind,
        iccid=iccid,
        eid=eid,
        loss=loss,
    )


def replacement_apply(
    *, change: PendingChange, registration: Registration, reviewer: User, now: datetime.datetime
) -> None:
    """An approved replacement of a suspended registration: the new SIM on the same number,
    suspended -> approved; the old SIM identifier is released with it. Called by the review
    service in its transaction, with the registration locked."""
    held = selectors.registration_active_clashes(
        iccid=change.new_iccid, eid=change.new_eid, exclude_pk=registration.pk
    )
    taken = ValidationError(
        _(
            "The new SIM is now held by another registration: reject this replacement and ask "
            "the counter for another SIM."
        ),
        code="sim_taken",
    )
    if held:
        raise taken
    try:
        with transaction.atomic():
            Registration.objects.filter(pk=registration.pk).update(
                status=Registration.Status.APPROVED,
                sim_kind=change.new_sim_kind,
                iccid=change.new_iccid,
                eid=change.new_eid,
                suspended_at=None,
                sim_loss="",
                updated_at=now,
            )
    except IntegrityError:
        # A registration took the new SIM at the same moment.
        raise taken from None
    registration_status_moved(
        registration=registration,
        old=Registration.Status.SUSPENDED,
        new=Registration.Status.APPROVED,
        actor=reviewer,
        at=now,
    )
