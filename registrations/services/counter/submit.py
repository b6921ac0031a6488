"""Submission: a draft (or a corrected returned record) sent for review once every step's rules
hold on what was saved, the representative the policy asks for is there and the customer is
within the per-person limit."""

from __future__ import annotations

import functools

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    Notification,
    Person,
    Registration,
    StatusChange,
    User,
)
from registrations.notifications import notification_queue
from registrations.policy import PolicyProfile, current_policy, sim_limit
from registrations.services.counter import rules
from registrations.services.counter.records import (
    registration_editor_note,
    registration_locked,
    require_counter_of,
)
from registrations.services.counter.steps import LAST_STEP
from registrations.services.documents import document_files_delete
from registrations.services.status_counts import registration_status_count_move


def _steps_errors(registration: Registration, policy: PolicyProfile, copies: dict) -> dict:
    """What is missing or no longer valid anywhere in the three steps, as saved."""
    customer = registration.customer
    if customer is None:
        return {"customer_kind": _("Complete step 1, Materials, first.")}
    materials = rules.MaterialsDetails(
        customer_kind=customer.kind,
        document_type=customer.document_type,
        original_sighted=registration.original_sighted,
        sim_kind=registration.sim_kind,
        iccid=registration.iccid,
        eid=registration.eid,
        msisdn=registration.msisdn,
        plan=registration.plan,
    )
    identity = rules.IdentityDetails(
        name_en=customer.name_en,
        name_zh=customer.name_zh,
        document_number=customer.document_number,
        date_of_birth=customer.date_of_birth,
        nationality=customer.nationality,
        address=customer.address,
        contact_number=customer.contact_number,
        email=customer.email,
    )
    errors = rules.materials_checked(materials, policy=policy, copies=copies, complete=True).errors
    errors |= rules.channel_checked(
        channel=registration.channel,
        online_reference=registration.online_reference,
        complete=True,
    ).errors
    errors |= rules.identity_checked(
        identity,
        policy=policy,
        document_type=customer.document_type,
        is_company=customer.kind == Person.Kind.COMPANY,
        complete=True,
    ).errors
    if "document_type" in errors:
        # The number is read by its document type: with the type refused, say that alone.
        errors.pop("document_number", None)
    return errors


def _lock_person(document_index: str) -> None:
    """Serialise submits for one person so that two counters cannot both pass the limit.

    PostgreSQL: a transaction-scoped advisory lock keyed on the blind index. SQLite: every
    transaction already begins IMMEDIATE (settings), which holds the database's write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", ["simreg.person." + document_index]
            )


def _remove_representative(registration: Registration) -> list[str]:
    """Drop a representative the policy does not ask for (and their copy): keep no more data."""
    fields = []
    rep = registration.representative
    if rep is not None:
        registration.representative = None
        registration.save(update_fields=["representative", "updated_at"])
        rep.delete()
        fields.append("representative")
    copies = list(registration.documents.filter(kind=DocumentCopy.Kind.REPRESENTATIVE))
    if copies:
        names = [copy.stored_name for copy in copies]
        DocumentCopy.objects.filter(pk__in=[copy.pk for copy in copies]).delete()
        transaction.on_commit(functools.partial(document_files_delete, names))
        fields.append("representative_copy")
    return fields


def _discrepancy_details(discrepancy: rules.Discrepancy) -> dict:
    """The flag as the submission's audit event names it: field names and references only."""
    if not discrepancy:
        return {}
    return {
        "discrepancy_fields": discrepancy.fields,
        "discrepancy_references": discrepancy.references,
    }


@transaction.atomic
def registration_submit(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    declaration_accepted: bool,
) -> Registration:
    """Send a draft (or a corrected returned record) for review, if every rule is met."""
    registration = registration_locked(registration)
    require_counter_of(actor, registration.store)
    if registration.status not in Registration.EDITABLE_STATUSES:
        raise ValidationError(
            _("This registration was already submitted."), code="already_submitted"
        )
    policy = current_policy()
    copies = (
        selectors.document_copy_list_on_file(registration=registration)
        if registration.customer is not None
        else {}
    )
    errors = _steps_errors(registration, policy, copies)
    errors |= rules.declaration_errors(accepted=declaration_accepted)
    if errors:
        raise ValidationError(errors)
    customer = registration.customer
    needed, errors = rules.representative_errors(
        customer=customer,
        representative=registration.representative,
        policy=policy,
        today=timezone.localdate(),
        copies=copies,
    )
    if errors:
        raise ValidationError(errors)

    _lock_person(customer.document_index)
    errors = rules.sim_clash_errors(
        iccid=registration.iccid,
        eid=registration.eid,
        msisdn=registration.msisdn,
        exclude_pk=registration.pk,
    )
    limit = sim_limit(
        policy, plan=registration.plan, is_company=customer.kind == Person.Kind.COMPANY
    )
    if limit is not None:
        count = selectors.person_other_active_sim_count(registration=registration)
        if count >= limit:
            message = (
                _(
                    "This company already holds %(count)d active %(plan)s SIMs; the limit is "
                    "%(limit)d."
                )
                if customer.kind == Person.Kind.COMPANY
                else _(
                    "This customer already holds %(count)d active %(plan)s SIMs; the limit is "
                    "%(limit)d."
                )
            )
            errors[NON_FIELD_ERRORS] = ValidationError(
                message,
                code="over_limit",
                params={
                    "count": count,
                    "limit": limit,
                    "plan": registration.get_plan_display().lower(),
                },
            )
    if errors:
        raise ValidationError(errors)

    fields = [] if needed else _remove_representative(registration)
    # Recomputed on every submission: a record corrected since is no longer flagged.
    discrepancy = rules.identity_discrepancy(
        document_type=customer.document_type,
        document_number=customer.document_number,
        name_en=customer.name_en,
        name_zh=customer.name_zh,
        date_of_birth=customer.date_of_birth,
        exclude_pk=registration.pk,
    )
    if (registration.discrepancy_fields, registration.discrepancy_references) != (
        discrepancy.fields,
        discrepancy.references,
    ):
        fields += ["discrepancy_fields", "discrepancy_references"]
    registration.discrepancy_fields = discrepancy.fields
    registration.discrepancy_references = discrepancy.references
    from_status = registration.status
    registration.status = Registration.Status.PENDING
    registration.submitted_by = actor
    registration.submitted_at = timezone.now()
    registration.declaration_accepted = True
    registration.furthest_step = LAST_STEP
    # A resubmission is a new submission: the previous decision stays in the history.
    registration.reviewer, registration.decided_at = None, None
    registration.reason_code, registration.comment = "", ""
    try:
        with transaction.atomic():
            registration.save()
    except IntegrityError:
        # Another counter registered the same SIM between the check above and this write.
        raise ValidationError(
            rules.sim_clash_errors(
                iccid=registration.iccid,
                eid=registration.eid,
                msisdn=registration.msisdn,
                exclude_pk=registration.pk,
            )
            or {NON_FIELD_ERRORS: rules.CLASH_MESSAGES["iccid"]}
        ) from None
    StatusChange.objects.create(
        registration=registration,
        from_status=from_status,
        to_status=Registration.Status.PENDING,
        actor=actor,
        at=registration.submitted_at,
    )
    # submitted_by names the last submitter only: an earlier round's stays barred from deciding.
    registration_editor_note(registration, actor)
    registration_status_count_move(
        store=registration.store_id, old=from_status, new=Registration.Status.PENDING
    )
    notification_queue(registration=registration, event=Notification.Event.SUBMITTED)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.RESUBMITTED
        if from_status == Registration.Status.RETURNED
        else AuditEvent.Action.SUBMITTED,
        origin=origin,
        registration=registration,
        fields=["declaration_accepted", *fields],
        details={"from": from_status, **_discrepancy_details(discrepancy)},
    )
    return registration
