"""The counter's steps: a draft created, each step saved to its row, a draft discarded.

Each step saves to the draft row. "complete_step" is the Next (or Submit) button: the step's
required values must be there and the next step opens; without it (Save draft, Back) whatever
was entered is kept as long as each value present is well-formed (services.counter.rules).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, Person, Registration, Store, User
from registrations.policy import current_policy
from registrations.services.counter import rules
from registrations.services.counter.records import (
    registration_editable,
    registration_editor_note,
    registration_locked,
    require_counter_of,
)
from registrations.services.documents import document_files_delete
from registrations.services.status_counts import registration_status_count_move

LAST_STEP = 3


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


@transaction.atomic
def registration_create_draft(
    *, store: Store, actor: User, origin: Origin = COMMAND_LINE
) -> Registration:
    require_counter_of(actor, store)
    registration = Registration.objects.create(store=store, created_by=actor)
    registration_editor_note(registration, actor)
    registration_status_count_move(store=store, new=registration.status)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_CREATED,
        origin=origin,
        registration=registration,
    )
    return registration


@transaction.atomic
def registration_save_materials(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    materials: rules.MaterialsDetails,
    complete_step: bool = True,
) -> Registration:
    """Step 1: the customer's document, the copies, the SIM and its plan."""
    registration = registration_editable(registration, actor)
    copies = (
        selectors.document_copy_list_on_file(registration=registration) if complete_step else {}
    )
    materials, errors = rules.materials_checked(
        materials, policy=current_policy(), copies=copies, complete=complete_step
    )
    for field, message in rules.sim_clash_errors(
        iccid=materials.iccid,
        eid=materials.eid,
        msisdn=materials.msisdn,
        exclude_pk=registration.pk,
    ).items():
        errors.setdefault(field, message)
    if errors:
        raise ValidationError(errors)

    customer = registration.customer
    before = {
        "customer_kind": customer.kind if customer else "",
        "document_type": customer.document_type if customer else "",
        "original_sighted": registration.original_sighted,
        "sim_kind": registration.sim_kind,
        "iccid": registration.iccid,
        "eid": registration.eid,
        "msisdn": registration.msisdn,
        "plan": registration.plan,
    }
    if customer is None:
        customer = Person()
    customer.kind, customer.document_type = materials.customer_kind, materials.document_type
    customer.save()
    registration.customer = customer
    registration.original_sighted = bool(materials.original_sighted)
    registration.sim_kind = materials.sim_kind
    registration.iccid, registration.eid = materials.iccid, materials.eid
    registration.msisdn = materials.msisdn
    registration.plan = materials.plan
    if complete_step:
        registration.furthest_step = max(registration.furthest_step, 2)
    registration.save()
    registration_editor_note(registration, actor)
    after = {
        "customer_kind": materials.customer_kind,
        "document_type": materials.document_type,
        "original_sighted": registration.original_sighted,
        "sim_kind": materials.sim_kind,
        "iccid": materials.iccid,
        "eid": materials.eid,
        "msisdn": materials.msisdn,
        "plan": materials.plan,
    }
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_SAVED,
        origin=origin,
        registration=registration,
        fields=_changed(before, after),
        details={"step": 1, "complete": complete_step},
    )
    return registration


@transaction.atomic
def registration_save_channel(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    channel: str,
    online_reference: str = "",
    complete_step: bool = True,
) -> Registration:
    """Step 2: in-store counter, or an online pre-registration completed in store."""
    registration = registration_editable(registration, actor)
    reference, errors = rules.channel_checked(
        channel=channel, online_reference=online_reference, complete=complete_step
    )
    if errors:
        raise ValidationError(errors)
    before = {"channel": registration.channel, "online_reference": registration.online_reference}
    registration.channel, registration.online_reference = channel, reference
    if complete_step:
        registration.furthest_step = max(registration.furthest_step, 3)
    registration.save()
    registration_editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_SAVED,
        origin=origin,
        registration=registration,
        fields=_changed(before, {"channel": channel, "online_reference": reference}),
        details={"step": 2, "complete": complete_step},
    )
    return registration


def _person_values(person: Person | None, names: Iterable[str]) -> dict:
    return {name: getattr(person, name) if person else None for name in names}


CUSTOMER_FIELDS = (
    "name_en",
    "name_zh",
    "document_number",
    "date_of_birth",
    "nationality",
    "address",
    "contact_number",
    "email",
)
REPRESENTATIVE_FIELDS = ("name_en", "name_zh", "document_type", "document_number", "date_of_birth")


@transaction.atomic
def registration_save_identity(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    identity: rules.IdentityDetails,
    notice_language: str = "",
    complete_step: bool = True,
) -> Registration:
    """Step 3: the customer's identity, and the confirming adult or responsible person; the
    language the customer's notifications are written in (unchanged when not given)."""
    registration = registration_editable(registration, actor)
    customer = registration.customer
    if customer is None or registration.furthest_step < LAST_STEP:
        raise ValidationError(_("Complete the earlier steps first."), code="steps_incomplete")
    policy = current_policy()
    kept, errors = rules.identity_checked(
        identity,
        policy=policy,
        document_type=customer.document_type,
        is_company=customer.kind == Person.Kind.COMPANY,
        complete=complete_step,
    )
    if errors:
        raise ValidationError(errors)

    before = _person_values(customer, CUSTOMER_FIELDS)
    customer.name_en, customer.name_zh = kept.name_en, kept.name_zh
    customer.document_number = kept.document_number
    customer.date_of_birth = kept.date_of_birth
    customer.nationality = kept.nationality
    customer.address, customer.contact_number = kept.address, kept.contact_number
    customer.email = kept.email
    customer.save()
    fields = _changed(before, _person_values(customer, CUSTOMER_FIELDS))

    rep = registration.representative
    rep_before = _person_values(rep, REPRESENTATIVE_FIELDS)
    # Whether a representative was entered is read from what was typed, as the rules read it.
    if identity.representative.is_blank():
        if rep is not None:
            registration.representative = None
            registration.save(update_fields=["representative", "updated_at"])
            rep.delete()
            fields += [f"representative_{name}" for name in REPRESENTATIVE_FIELDS]
    else:
        if rep is None:
            rep = Person(kind=Person.Kind.INDIVIDUAL)
        representative = kept.representative
        rep.name_en, rep.name_zh = representative.name_en, representative.name_zh
        rep.document_type = representative.document_type
        rep.document_number = representative.document_number
        rep.date_of_birth = representative.date_of_birth
        rep.save()
        registration.representative = rep
        fields += [
            f"representative_{name}"
            for name in _changed(rep_before, _person_values(rep, REPRESENTATIVE_FIELDS))
        ]
    if notice_language and notice_language != registration.notice_language:
        if notice_language not in Registration.NoticeLanguage.values:
            raise ValidationError({"notice_language": _("Choose English or Traditional Chinese.")})
        registration.notice_language = notice_language
        fields.append("notice_language")
    registration.save()
    registration_editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_SAVED,
        origin=origin,
        registration=registration,
        fields=fields,
        details={"step": 3, "complete": complete_step},
    )
    return registration


def _registration_delete(registration: Registration) -> None:
    """Delete a draft with its people and copies; the files go once the deletion commits."""
    names = list(registration.documents.values_list("stored_name", flat=True))
    people = [pk for pk in (registration.customer_id, registration.representative_id) if pk]
    registration.delete()
    Person.objects.filter(pk__in=people).delete()
    transaction.on_commit(functools.partial(document_files_delete, names))


@transaction.atomic
def registration_discard_draft(
    *,
    registration: Registration,
    actor: User | None,
    origin: Origin = COMMAND_LINE,
    reason: str = "discarded",
) -> None:
    registration = registration_locked(registration)
    if actor is not None:
        require_counter_of(actor, registration.store)
    if registration.status != Registration.Status.DRAFT:
        raise ValidationError(_("Only a draft can be discarded."), code="not_a_draft")
    _registration_delete(registration)
    registration_status_count_move(store=registration.store_id, old=registration.status)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_DISCARDED,
        origin=origin,
        registration=registration,
        details={"reason": reason},
    )
