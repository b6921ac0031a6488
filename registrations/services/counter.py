"""The counter: drafts saved step by step, document copies, submission, updates and
terminations asked for at the counter."""

from __future__ import annotations

import datetime
import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registrations import documents, roles, selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.documents import CheckedUpload
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    PendingChange,
    Person,
    Registration,
    RegistrationEditor,
    StatusChange,
    Store,
    User,
)
from registrations.policy import PolicyProfile, current_policy, sim_limit
from registrations.services.status_counts import registration_status_count_move
from registrations.storage import StorageUnavailable
from registrations.validators import (
    BUSINESS_REGISTRATION,
    age_on,
    validate_date_of_birth,
    validate_document_number,
    validate_eid,
    validate_iccid,
    validate_msisdn,
)

logger = logging.getLogger(__name__)

# The counter flow -------------------------------------------------------------------------------
#
# Each step saves to the draft row. "complete_step" is the Next (or Submit) button: the step's
# required values must be there and the next step opens; without it (Save draft, Back) whatever
# was entered is kept as long as each value present is well-formed.

EDITABLE_STATUSES = (Registration.Status.DRAFT, Registration.Status.RETURNED)
LAST_STEP = 3

CLASH_MESSAGES = {
    "iccid": _(
        "This ICCID is already in an active registration. Check the number on the SIM card; "
        "a SIM can be registered again only after its registration is terminated."
    ),
    "eid": _(
        "This EID is already in an active registration. Check the number in the device's "
        "settings; it can be registered again only after that registration is terminated."
    ),
    "msisdn": _(
        "This mobile number is already in an active registration. It can be registered again "
        "only after that registration is terminated."
    ),
}

MISSING = {
    "customer_kind": _("Choose whether the customer is an individual or a company."),
    "document_type": _("Choose the identity document the customer showed."),
    "original_sighted": _("Confirm that you have seen the original document."),
    "identity_copy": _("Upload a photo or scan of the identity document."),
    "proof_of_address": _("Upload a photo or scan of the proof of address."),
    "sim_kind": _("Choose a physical SIM or an eSIM."),
    "iccid": _("Enter the ICCID printed on the SIM card."),
    "eid": _("Enter the EID shown in the device's settings."),
    "msisdn": _("Enter the mobile number of this SIM."),
    "plan": _("Choose prepaid or service plan."),
    "channel": _("Choose how the customer registers."),
    "online_reference": _("Enter the reference of the online pre-registration."),
    "name_en": _("Enter the name in English as on the document."),
    "document_number": _("Enter the document number."),
    "date_of_birth": _("Enter the date of birth."),
    "nationality": _("Choose the nationality."),
    "address": _("Enter the residential address."),
    "contact_number": _("Enter a contact number."),
}

# The form field of each kind of copy, for a message beside the upload.
COPY_FIELDS = {
    DocumentCopy.Kind.IDENTITY: "identity_copy",
    DocumentCopy.Kind.PROOF_OF_ADDRESS: "proof_of_address",
    DocumentCopy.Kind.REPRESENTATIVE: "representative_copy",
}
COPY_NOT_STORED = _("The document copy could not be stored; try again. Nothing you typed was lost.")

ONLINE_REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9\-/]{3,39}$")


@dataclass(frozen=True, repr=False)
class RepresentativeDetails:
    """The confirming adult of a minor, or a company's responsible person, as entered."""

    name_en: str = ""
    name_zh: str = ""
    document_type: str = ""
    document_number: str = ""
    date_of_birth: datetime.date | None = None

    def is_blank(self) -> bool:
        return not any(
            (self.name_en.strip(), self.name_zh.strip(), self.document_number.strip())
        ) and (self.date_of_birth is None)

    def __repr__(self) -> str:
        return "RepresentativeDetails(…)"


def _require_counter_of(actor: User, store: Store) -> None:
    if not (roles.allows(actor, roles.RECORD) and actor.stores.filter(pk=store.pk).exists()):
        raise PermissionDenied("Only counter staff of the record's store may do this.")


def _locked(registration: Registration) -> Registration:
    """The row again, locked for this transaction (PostgreSQL; SQLite's write lock is held)."""
    return (
        Registration.objects.select_for_update(of=("self",))
        .select_related("store", "customer", "representative")
        .get(pk=registration.pk)
    )


def _editor_note(registration: Registration, actor: User | None) -> None:
    """Keep who entered or changed the record, for the four-eyes rule at decision time.

    In the caller's transaction: a save that rolls back leaves no trace here either. The first
    time is kept; a later save by the same person adds nothing (the row is unique).
    """
    if actor is None or actor.pk is None:
        return
    RegistrationEditor.objects.bulk_create(
        [RegistrationEditor(registration=registration, user=actor)], ignore_conflicts=True
    )


def _editable(registration: Registration, actor: User) -> Registration:
    registration = _locked(registration)
    _require_counter_of(actor, registration.store)
    if registration.status not in EDITABLE_STATUSES:
        raise ValidationError(
            _("This registration was submitted and can no longer be changed at the counter."),
            code="not_editable",
        )
    return registration


def _validated(
    errors: dict, field: str, validator: Callable[[str], str], value: str, *, required: bool
) -> str:
    """Run a validator on a non-blank value; note a missing value only when it is required."""
    value = (value or "").strip()
    if not value:
        if required:
            errors[field] = MISSING.get(field, _("This field is required."))
        return ""
    try:
        return validator(value)
    except ValidationError as exc:
        errors[field] = exc
        return ""


def _msisdn_validator(policy: PolicyProfile) -> Callable[[str], str]:
    return functools.partial(validate_msisdn, region=policy.msisdn_region)


def _document_validator(document_type: str) -> Callable[[str], str]:
    return functools.partial(validate_document_number, document_type)


def _validate_email(value: str) -> str:
    EmailValidator(message=_("Enter an e-mail address such as name@example.com."))(value)
    return value


def _changed(before: dict, after: dict) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


def document_type_errors(
    policy: PolicyProfile, *, customer_kind: str, document_type: str, field: str
) -> dict:
    if document_type not in policy.document_types:
        return {field: _("Choose one of the identity documents accepted here.")}
    if customer_kind == Person.Kind.COMPANY and document_type != BUSINESS_REGISTRATION:
        return {field: _("A company registers with its business registration certificate.")}
    if customer_kind == Person.Kind.INDIVIDUAL and document_type == BUSINESS_REGISTRATION:
        return {
            field: _(
                "A business registration certificate is for a company. For an individual, "
                "choose the identity document they showed."
            )
        }
    return {}


@transaction.atomic
def registration_create_draft(
    *, store: Store, actor: User, origin: Origin = COMMAND_LINE
) -> Registration:
    _require_counter_of(actor, store)
    registration = Registration.objects.create(store=store, created_by=actor)
    _editor_note(registration, actor)
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
    customer_kind: str,
    document_type: str,
    original_sighted: bool,
    sim_kind: str,
    iccid: str = "",
    eid: str = "",
    msisdn: str = "",
    plan: str = "",
    complete_step: bool = True,
) -> Registration:
    """Step 1: the customer's document, the copies, the SIM and its plan."""
    registration = _editable(registration, actor)
    policy = current_policy()
    errors: dict = {}
    if customer_kind not in Person.Kind.values:
        errors["customer_kind"] = MISSING["customer_kind"]
    else:
        errors |= document_type_errors(
            policy, customer_kind=customer_kind, document_type=document_type, field="document_type"
        )
    iccid_value = eid_value = ""
    if sim_kind == Registration.SimKind.PHYSICAL:
        iccid_value = _validated(errors, "iccid", validate_iccid, iccid, required=complete_step)
    elif sim_kind == Registration.SimKind.ESIM:
        eid_value = _validated(errors, "eid", validate_eid, eid, required=complete_step)
    else:
        errors["sim_kind"] = MISSING["sim_kind"]
    msisdn_value = _validated(
        errors, "msisdn", _msisdn_validator(policy), msisdn, required=complete_step
    )
    if (plan and plan not in Registration.Plan.values) or (complete_step and not plan):
        errors["plan"] = MISSING["plan"]
    if complete_step:
        if not original_sighted:
            errors["original_sighted"] = MISSING["original_sighted"]
        on_file = selectors.document_copy_list_on_file(registration=registration)
        if DocumentCopy.Kind.IDENTITY not in on_file:
            errors["identity_copy"] = MISSING["identity_copy"]
        if policy.proof_of_address_required and DocumentCopy.Kind.PROOF_OF_ADDRESS not in on_file:
            errors["proof_of_address"] = MISSING["proof_of_address"]
    for field in selectors.registration_active_clashes(
        iccid=iccid_value, eid=eid_value, msisdn=msisdn_value, exclude_pk=registration.pk
    ):
        errors.setdefault(field, CLASH_MESSAGES[field])
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
    customer.kind, customer.document_type = customer_kind, document_type
    customer.save()
    registration.customer = customer
    registration.original_sighted = bool(original_sighted)
    registration.sim_kind = sim_kind
    registration.iccid, registration.eid = iccid_value, eid_value
    registration.msisdn = msisdn_value
    registration.plan = plan
    if complete_step:
        registration.step = max(registration.step, 2)
    registration.save()
    _editor_note(registration, actor)
    after = {
        "customer_kind": customer_kind,
        "document_type": document_type,
        "original_sighted": registration.original_sighted,
        "sim_kind": sim_kind,
        "iccid": iccid_value,
        "eid": eid_value,
        "msisdn": msisdn_value,
        "plan": plan,
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
    registration = _editable(registration, actor)
    errors: dict = {}
    reference = ""
    if channel not in Registration.Channel.values:
        errors["channel"] = MISSING["channel"]
    elif channel == Registration.Channel.ONLINE:
        reference = (online_reference or "").strip().upper()
        if not reference:
            if complete_step:
                errors["online_reference"] = MISSING["online_reference"]
        elif not ONLINE_REFERENCE.fullmatch(reference):
            errors["online_reference"] = _(
                "An online pre-registration reference has 4 to 40 letters, digits, hyphens or "
                "slashes. Copy it from the customer's confirmation."
            )
    if errors:
        raise ValidationError(errors)
    before = {"channel": registration.channel, "online_reference": registration.online_reference}
    registration.channel, registration.online_reference = channel, reference
    if complete_step:
        registration.step = max(registration.step, 3)
    registration.save()
    _editor_note(registration, actor)
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
    name_en: str = "",
    name_zh: str = "",
    document_number: str = "",
    date_of_birth: datetime.date | None = None,
    nationality: str = "",
    address: str = "",
    contact_number: str = "",
    email: str = "",
    representative: RepresentativeDetails | None = None,
    complete_step: bool = True,
) -> Registration:
    """Step 3: the customer's identity, and the confirming adult or responsible person."""
    registration = _editable(registration, actor)
    customer = registration.customer
    if customer is None or registration.step < LAST_STEP:
        raise ValidationError(_("Complete the earlier steps first."), code="steps_incomplete")
    policy = current_policy()
    errors: dict = {}
    is_company = customer.kind == Person.Kind.COMPANY
    name_en = name_en.strip()
    if complete_step and not name_en:
        errors["name_en"] = MISSING["name_en"]
    name_zh = name_zh.strip() if policy.chinese_name_field else ""
    number = _validated(
        errors,
        "document_number",
        _document_validator(customer.document_type),
        document_number,
        required=complete_step,
    )
    if is_company:
        date_of_birth, nationality = None, ""
    else:
        if date_of_birth is not None:
            try:
                validate_date_of_birth(date_of_birth)
            except ValidationError as exc:
                errors["date_of_birth"] = exc
        elif complete_step:
            errors["date_of_birth"] = MISSING["date_of_birth"]
        nationality = nationality.strip().upper()
        if (nationality and not re.fullmatch(r"[A-Z]{2}", nationality)) or (
            complete_step and not nationality
        ):
            errors["nationality"] = MISSING["nationality"]
    address = address.strip()
    if complete_step and not address:
        errors["address"] = MISSING["address"]
    contact = _validated(
        errors, "contact_number", _msisdn_validator(policy), contact_number, required=complete_step
    )
    email = _validated(errors, "email", _validate_email, email, required=False)

    representative = representative or RepresentativeDetails()
    rep_number = ""
    if not representative.is_blank():
        if representative.document_type:
            errors |= document_type_errors(
                policy,
                customer_kind=Person.Kind.INDIVIDUAL,
                document_type=representative.document_type,
                field="representative_document_type",
            )
        elif representative.document_number.strip():
            errors["representative_document_type"] = MISSING["document_type"]
        if "representative_document_type" not in errors and representative.document_type:
            rep_number = _validated(
                errors,
                "representative_document_number",
                _document_validator(representative.document_type),
                representative.document_number,
                required=False,
            )
        if representative.date_of_birth is not None:
            try:
                validate_date_of_birth(representative.date_of_birth)
            except ValidationError as exc:
                errors["representative_date_of_birth"] = exc
    if errors:
        raise ValidationError(errors)

    before = _person_values(customer, CUSTOMER_FIELDS)
    customer.name_en, customer.name_zh = name_en, name_zh
    customer.document_number = number
    customer.date_of_birth = date_of_birth
    customer.nationality = nationality
    customer.address, customer.contact_number, customer.email = address, contact, email
    customer.save()
    fields = _changed(before, _person_values(customer, CUSTOMER_FIELDS))

    rep = registration.representative
    rep_before = _person_values(rep, REPRESENTATIVE_FIELDS)
    if representative.is_blank():
        if rep is not None:
            registration.representative = None
            registration.save(update_fields=["representative", "updated_at"])
            rep.delete()
            fields += [f"representative_{name}" for name in REPRESENTATIVE_FIELDS]
    else:
        if rep is None:
            rep = Person(kind=Person.Kind.INDIVIDUAL)
        rep.name_en = representative.name_en.strip()
        rep.name_zh = representative.name_zh.strip() if policy.chinese_name_field else ""
        rep.document_type = representative.document_type
        rep.document_number = rep_number
        rep.date_of_birth = representative.date_of_birth
        rep.save()
        registration.representative = rep
        fields += [
            f"representative_{name}"
            for name in _changed(rep_before, _person_values(rep, REPRESENTATIVE_FIELDS))
        ]
    registration.save()
    _editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.DRAFT_SAVED,
        origin=origin,
        registration=registration,
        fields=fields,
        details={"step": 3, "complete": complete_step},
    )
    return registration


def _completeness_errors(registration: Registration, policy: PolicyProfile) -> dict:
    """What is missing or no longer valid anywhere in the three steps."""
    customer = registration.customer
    if customer is None:
        return {"customer_kind": _("Complete step 1, Materials, first.")}
    errors: dict = {}
    errors |= document_type_errors(
        policy,
        customer_kind=customer.kind,
        document_type=customer.document_type,
        field="document_type",
    )
    if not registration.original_sighted:
        errors["original_sighted"] = MISSING["original_sighted"]
    on_file = selectors.document_copy_list_on_file(registration=registration)
    if DocumentCopy.Kind.IDENTITY not in on_file:
        errors["identity_copy"] = MISSING["identity_copy"]
    if policy.proof_of_address_required and DocumentCopy.Kind.PROOF_OF_ADDRESS not in on_file:
        errors["proof_of_address"] = MISSING["proof_of_address"]
    if registration.sim_kind == Registration.SimKind.PHYSICAL:
        _validated(errors, "iccid", validate_iccid, registration.iccid, required=True)
    elif registration.sim_kind == Registration.SimKind.ESIM:
        _validated(errors, "eid", validate_eid, registration.eid, required=True)
    else:
        errors["sim_kind"] = MISSING["sim_kind"]
    _validated(errors, "msisdn", _msisdn_validator(policy), registration.msisdn, required=True)
    if registration.plan not in Registration.Plan.values:
        errors["plan"] = MISSING["plan"]
    if registration.channel == Registration.Channel.ONLINE and not registration.online_reference:
        errors["online_reference"] = MISSING["online_reference"]
    if not customer.name_en:
        errors["name_en"] = MISSING["name_en"]
    if "document_type" not in errors:
        _validated(
            errors,
            "document_number",
            _document_validator(customer.document_type),
            customer.document_number,
            required=True,
        )
    if customer.kind == Person.Kind.INDIVIDUAL:
        if customer.date_of_birth is None:
            errors["date_of_birth"] = MISSING["date_of_birth"]
        if not customer.nationality:
            errors["nationality"] = MISSING["nationality"]
    if not customer.address:
        errors["address"] = MISSING["address"]
    _validated(
        errors, "contact_number", _msisdn_validator(policy), customer.contact_number, required=True
    )
    return errors


def _representative_errors(
    registration: Registration, policy: PolicyProfile, today: datetime.date
) -> tuple[bool, dict]:
    """Whether a representative is needed, and what is wrong with the one given."""
    customer = registration.customer
    if customer.kind == Person.Kind.COMPANY:
        minor = False
    else:
        minor = age_on(customer.date_of_birth, today) < policy.minor_age
        if minor and policy.minor_rule == "guardian_name":
            return True, {
                "date_of_birth": _(
                    "The customer is under %(age)d. Under this policy a minor's SIM is "
                    "registered in the parent's or guardian's name: register the parent or "
                    "guardian as the customer."
                )
                % {"age": policy.minor_age}
            }
        if not minor:
            return False, {}
    rep = registration.representative
    errors: dict = {}
    if minor:
        missing_name = _(
            "The customer is under %(age)d: enter the name of the confirming adult."
        ) % {"age": policy.minor_age}
        too_young = _("The confirming adult must be %(age)d or over.") % {"age": policy.adult_age}
    else:
        missing_name = _("A company needs a responsible person: enter their name.")
        too_young = _("The responsible person must be %(age)d or over.") % {"age": policy.adult_age}
    if rep is None or not rep.name_en:
        errors["representative_name_en"] = missing_name
    if rep is None or not rep.document_type:
        errors["representative_document_type"] = MISSING["document_type"]
    if rep is None or not rep.document_number:
        errors["representative_document_number"] = MISSING["document_number"]
    if rep is None or rep.date_of_birth is None:
        errors["representative_date_of_birth"] = MISSING["date_of_birth"]
    elif age_on(rep.date_of_birth, today) < policy.adult_age:
        errors["representative_date_of_birth"] = too_young
    if minor and DocumentCopy.Kind.REPRESENTATIVE not in selectors.document_copy_list_on_file(
        registration=registration
    ):
        errors["representative_copy"] = _(
            "Upload a photo or scan of the confirming adult's identity document."
        )
    return True, errors


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
        transaction.on_commit(functools.partial(_delete_files, names))
        fields.append("representative_copy")
    return fields


def _delete_files(stored_names: Iterable[str]) -> None:
    for name in stored_names:
        documents.delete_stored(name)


@transaction.atomic
def registration_submit(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    declaration_accepted: bool,
) -> Registration:
    """Send a draft (or a corrected returned record) for review, if every rule is met."""
    registration = _locked(registration)
    _require_counter_of(actor, registration.store)
    if registration.status not in EDITABLE_STATUSES:
        raise ValidationError(
            _("This registration was already submitted."), code="already_submitted"
        )
    policy = current_policy()
    errors = _completeness_errors(registration, policy)
    if not declaration_accepted:
        errors["declaration_accepted"] = _(
            "The customer must accept the declaration before you submit."
        )
    if errors:
        raise ValidationError(errors)
    needed, errors = _representative_errors(registration, policy, timezone.localdate())
    if errors:
        raise ValidationError(errors)

    customer = registration.customer
    _lock_person(customer.document_index)
    for field in selectors.registration_active_clashes(
        iccid=registration.iccid,
        eid=registration.eid,
        msisdn=registration.msisdn,
        exclude_pk=registration.pk,
    ):
        errors[field] = CLASH_MESSAGES[field]
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
    from_status = registration.status
    registration.status = Registration.Status.PENDING
    registration.submitted_by = actor
    registration.submitted_at = timezone.now()
    registration.declaration_accepted = True
    registration.step = LAST_STEP
    # A resubmission is a new submission: the previous decision stays in the history.
    registration.reviewer, registration.decided_at = None, None
    registration.reason_code, registration.comment = "", ""
    try:
        with transaction.atomic():
            registration.save()
    except IntegrityError:
        # Another counter registered the same SIM between the check above and this write.
        clashes = selectors.registration_active_clashes(
            iccid=registration.iccid,
            eid=registration.eid,
            msisdn=registration.msisdn,
            exclude_pk=registration.pk,
        )
        raise ValidationError(
            {field: CLASH_MESSAGES[field] for field in clashes}
            or {NON_FIELD_ERRORS: CLASH_MESSAGES["iccid"]}
        ) from None
    StatusChange.objects.create(
        registration=registration,
        from_status=from_status,
        to_status=Registration.Status.PENDING,
        actor=actor,
        at=registration.submitted_at,
    )
    # submitted_by names the last submitter only: an earlier round's stays barred from deciding.
    _editor_note(registration, actor)
    registration_status_count_move(
        store=registration.store_id, old=from_status, new=Registration.Status.PENDING
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.RESUBMITTED
        if from_status == Registration.Status.RETURNED
        else AuditEvent.Action.SUBMITTED,
        origin=origin,
        registration=registration,
        fields=["declaration_accepted", *fields],
        details={"from": from_status},
    )
    return registration


def _registration_delete(registration: Registration) -> None:
    """Delete a draft with its people and copies; the files go once the deletion commits."""
    names = list(registration.documents.values_list("stored_name", flat=True))
    people = [pk for pk in (registration.customer_id, registration.representative_id) if pk]
    registration.delete()
    Person.objects.filter(pk__in=people).delete()
    transaction.on_commit(functools.partial(_delete_files, names))


@transaction.atomic
def registration_discard_draft(
    *,
    registration: Registration,
    actor: User | None,
    origin: Origin = COMMAND_LINE,
    reason: str = "discarded",
) -> None:
    registration = _locked(registration)
    if actor is not None:
        _require_counter_of(actor, registration.store)
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


def _document_copy_write(
    *,
    registration: Registration,
    kind: str,
    upload: CheckedUpload,
    actor: User,
    origin: Origin,
    replace: bool,
    field: str,
) -> DocumentCopy:
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
        _editor_note(registration, actor)
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
    transaction.on_commit(functools.partial(_delete_files, replaced))
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
    registration = _editable(registration, actor)
    return _document_copy_write(
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

    A copy whose file is missing or damaged raises documents.CopyUnavailable, once the attempt
    is recorded (with "available": false): the audit accounts for every try, shown or not.
    """
    # Not atomic as a whole: the event of a failed attempt must commit before the error is raised.
    with transaction.atomic():
        if not selectors.document_copy_can_view(user=actor, document=document):
            raise PermissionDenied("Not allowed to view this document copy.")
        reason = reason.strip()
        if not reason:
            raise ValidationError({"reason": _("Say why you need to see this copy.")})
        try:
            data = documents.read_decrypted(document.stored_name)
        except documents.CopyUnavailable:
            data = None
        details: dict = {"document": document.pk, "kind": document.kind}
        if data is None:
            details["available"] = False
        audit_record(
            actor=actor,
            action=AuditEvent.Action.DOCUMENT_VIEWED,
            origin=origin,
            registration=document.registration,
            reason=reason,
            fields=[document.kind],
            details=details,
        )
    if data is None:
        raise documents.CopyUnavailable(f"Document copy #{document.pk} cannot be read.")
    return data


def _approved_for_change(registration: Registration, actor: User) -> Registration:
    registration = _locked(registration)
    _require_counter_of(actor, registration.store)
    if registration.status != Registration.Status.APPROVED:
        raise ValidationError(
            _("Only an approved registration can be updated or terminated."), code="not_approved"
        )
    if registration.changes.filter(status=PendingChange.Status.PENDING).exists():
        raise ValidationError(CHANGE_PENDING, code="change_pending")
    return registration


CHANGE_PENDING = _(
    "A change to this registration is already waiting for review. A supervisor must decide it "
    "before another one is recorded."
)


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
    new_address: str = "",
    new_contact_number: str = "",
    new_email: str = "",
    new_document_type: str = "",
    new_document_number: str = "",
    renewed_copy: CheckedUpload | None = None,
) -> PendingChange:
    """Record an update of information for a supervisor to approve; nothing applies yet."""
    registration = _approved_for_change(registration, actor)
    policy = current_policy()
    errors: dict = {}
    address = new_address.strip()
    contact = _validated(
        errors, "new_contact_number", _msisdn_validator(policy), new_contact_number, required=False
    )
    email = _validated(errors, "new_email", _validate_email, new_email, required=False)
    number = ""
    if new_document_type or new_document_number.strip() or renewed_copy is not None:
        errors |= document_type_errors(
            policy,
            customer_kind=registration.customer.kind,
            document_type=new_document_type,
            field="new_document_type",
        )
        if "new_document_type" not in errors:
            number = _validated(
                errors,
                "new_document_number",
                _document_validator(new_document_type),
                new_document_number,
                required=True,
            )
    changed = [
        name
        for name, value in (
            ("address", address),
            ("contact_number", contact),
            ("email", email),
            ("document_type", number and new_document_type),
            ("document_number", number),
        )
        if value
    ]
    if not changed and not errors:
        errors[NON_FIELD_ERRORS] = _(
            "Enter at least one new value: address, contact number, e-mail or a renewed document."
        )
    if errors:
        raise ValidationError(errors)
    change = PendingChange(
        registration=registration,
        kind=PendingChange.Kind.UPDATE,
        changed_fields=changed,
        new_address=address,
        new_contact_number=contact,
        new_email=email,
        new_document_type=new_document_type if number else "",
        new_document_number=number,
        requested_by=actor,
    )
    _pending_change_save(change)
    _editor_note(registration, actor)
    fields = list(changed)
    if renewed_copy is not None:
        change.new_document_copy = _document_copy_write(
            registration=registration,
            kind=DocumentCopy.Kind.IDENTITY,
            upload=renewed_copy,
            actor=actor,
            origin=origin,
            replace=False,
            field="renewed_copy",
        )
        change.save(update_fields=["new_document_copy"])
        fields.append("document_copy")
    audit_record(
        actor=actor,
        action=AuditEvent.Action.CHANGE_REQUESTED,
        origin=origin,
        registration=registration,
        fields=fields,
        details={"change": change.pk},
    )
    return change


@transaction.atomic
def registration_request_termination(
    *, registration: Registration, actor: User, origin: Origin = COMMAND_LINE, reason: str
) -> PendingChange:
    """Record a termination (deregistration) with its reason, for a supervisor to approve."""
    registration = _approved_for_change(registration, actor)
    reason = reason.strip()
    if not reason:
        raise ValidationError(
            {"termination_reason": _("Say why the registration is to be terminated.")}
        )
    change = PendingChange(
        registration=registration,
        kind=PendingChange.Kind.TERMINATION,
        changed_fields=["status"],
        termination_reason=reason,
        requested_by=actor,
    )
    _pending_change_save(change)
    _editor_note(registration, actor)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.TERMINATION_REQUESTED,
        origin=origin,
        registration=registration,
        fields=["termination_reason"],
        details={"change": change.pk},
    )
    return change
