"""Forms of the counter flow: one per step, plus search, update and termination.

Forms check the shape of each value a user typed (check digits, dates, files). What a step
needs and which values go together are the step's rules (services), which a form applies to
show every message at once and the service applies again, with the database, before it saves.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.template.defaultfilters import filesizeformat
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from registrations import documents, services
from registrations.forms.common import NATIONALITIES
from registrations.labels import field_label
from registrations.models import (
    DocumentCopy,
    DocumentType,
    Person,
    Registration,
    Store,
    User,
)
from registrations.policy import current_policy
from registrations.validators import (
    BUSINESS_REGISTRATION,
    validate_date_of_birth,
    validate_document_number,
    validate_msisdn,
)

# Buttons of a step: "next" and "submit" complete the step; "save" and "back" keep a partial one.
ACTIONS = ("back", "save", "next", "submit")
COMPLETE_ACTIONS = frozenset({"next", "submit"})

DOCUMENT_NUMBER_LABELS = {
    DocumentType.HKID: _("HKID number"),
    DocumentType.PASSPORT: _("Passport number"),
    DocumentType.MACAO_ID: _("Macao identity card number"),
    DocumentType.EXIT_ENTRY_PERMIT: _("Exit-Entry Permit number"),
    DocumentType.BUSINESS_REGISTRATION: _("Business registration number"),
}

NO_AUTOFILL = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}


def _date_input() -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def _file_input() -> forms.FileInput:
    return forms.FileInput(attrs={"accept": documents.ACCEPT})


def _document_choices(*, include_business: bool = True, blank: bool = False) -> list:
    allowed = current_policy().document_types
    choices = [
        (value, label)
        for value, label in DocumentType.choices
        if value in allowed and (include_business or value != BUSINESS_REGISTRATION)
    ]
    return [("", "---------"), *choices] if blank else choices


def _clean_upload(upload) -> documents.CheckedUpload | None:
    return documents.check_upload(upload) if upload else None


def _add_rule_errors(form: forms.Form, errors: dict) -> None:
    """Put a rule's messages beside their fields, unless a field's own check of its value
    failed first; a message about the whole form only when no field has one."""
    for field, error in errors.items():
        if field == NON_FIELD_ERRORS:
            if not form.errors:
                form.add_error(None, error)
        elif field in form.fields and field not in form.errors:
            form.add_error(field, error)


def _copy_help() -> str:
    return format_lazy(
        "{} {}",
        _("A photo or scan: JPEG, PNG or PDF, up to"),
        filesizeformat(settings.DOCUMENT_MAX_BYTES),
    )


class StepForm(forms.Form):
    """A step of the counter flow.

    Whether the step is complete is its rules' to say (services), with the button pressed:
    the fields in `required_to_complete` are only marked as required on the page.
    """

    required_to_complete: tuple[str, ...] = ()
    # File field name -> the kind of DocumentCopy it stores.
    file_fields: dict[str, str] = {}

    def __init__(self, *args, complete_step: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.complete_step = complete_step
        self.copies_on_file: frozenset[str] = frozenset()
        for name in self.required_to_complete:
            if name in self.fields:
                self.fields[name].required = False

    def uploads(self) -> dict[str, documents.CheckedUpload]:
        """Accepted files of this post, by DocumentCopy kind, even if other fields failed."""
        cleaned = getattr(self, "cleaned_data", {})
        return {
            kind: cleaned[name]
            for name, kind in self.file_fields.items()
            if name not in self.errors and cleaned.get(name) is not None
        }

    def show_required_to_complete(self) -> None:
        """Mark what the step needs to be complete, whichever button was pressed.

        Only for showing the form again: a partial save has been validated by now.
        """
        for name in self.required_to_complete:
            if name in self.fields:
                self.fields[name].required = True

    def copies(self) -> set[str]:
        """The kinds of copy the record has with this post: on file, or accepted just now."""
        return set(self.copies_on_file) | set(self.uploads())

    def show_copies_on_file(self, on_file: dict[str, DocumentCopy]) -> None:
        """A stored copy makes its upload optional; browsers cannot refill a file input."""
        self.copies_on_file = frozenset(on_file)
        for name, kind in self.file_fields.items():
            if name in self.fields and kind in on_file:
                self.fields[name].required = False


class NewRegistrationForm(forms.Form):
    store = forms.ModelChoiceField(
        label=_("Store"),
        queryset=Store.objects.none(),
        error_messages={"required": _("Choose the store you are working at.")},
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        stores = user.stores.filter(is_active=True).order_by("code")
        self.fields["store"].queryset = stores
        if len(stores) == 1:
            self.fields["store"].initial = stores[0]
            self.fields["store"].widget = forms.HiddenInput()
            self.fields["store"].required = False
            self.only_store = stores[0]
        else:
            self.only_store = None

    def clean_store(self) -> Store:
        store = self.cleaned_data.get("store") or self.only_store
        if store is None:
            raise ValidationError(_("Choose the store you are working at."))
        return store

    def clean(self):
        cleaned = super().clean()
        if self.only_store is not None and self.has_error("store"):
            # A hidden field shows no message of its own: say it above the form.
            del self.errors["store"]
            self.add_error(None, _("This store is not one you work at."))
        return cleaned


class MaterialsForm(StepForm):
    """Step 1: the customer's document and its copy, the SIM and the plan."""

    customer_kind = forms.ChoiceField(
        label=_("Customer"),
        choices=Person.Kind.choices,
        initial=Person.Kind.INDIVIDUAL,
        widget=forms.RadioSelect,
    )
    document_type = forms.ChoiceField(label=_("Identity document"), choices=DocumentType.choices)
    original_sighted = forms.BooleanField(
        label=_("I have seen the original document and it matches the customer"), required=False
    )
    identity_copy = forms.FileField(
        label=_("Copy of the identity document"), required=False, widget=_file_input()
    )
    sim_kind = forms.ChoiceField(
        label=_("SIM"),
        choices=Registration.SimKind.choices,
        initial=Registration.SimKind.PHYSICAL,
        widget=forms.RadioSelect,
    )
    iccid = forms.CharField(
        label=_("ICCID"),
        required=False,
        max_length=40,
        help_text=_("For a physical SIM: the 19 or 20 digits printed on the card."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "numeric"}),
    )
    eid = forms.CharField(
        label=_("EID"),
        required=False,
        max_length=48,
        help_text=_("For an eSIM: the 32 digits shown in the device's settings."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "numeric"}),
    )
    msisdn = forms.CharField(
        label=_("Mobile number"),
        max_length=30,
        help_text=_("The number of this SIM. Hong Kong numbers need no country code."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "tel"}),
    )
    plan = forms.ChoiceField(
        label=_("Plan"), choices=Registration.Plan.choices, widget=forms.RadioSelect
    )
    proof_of_address = forms.FileField(
        label=_("Proof of address"), required=False, widget=_file_input()
    )

    required_to_complete = services.MATERIALS_NEEDED
    file_fields = {
        "identity_copy": DocumentCopy.Kind.IDENTITY,
        "proof_of_address": DocumentCopy.Kind.PROOF_OF_ADDRESS,
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.fields["document_type"].choices = _document_choices()
        self.fields["identity_copy"].help_text = _copy_help()
        if self.policy.proof_of_address_required:
            self.fields["proof_of_address"].help_text = _copy_help()
        else:
            del self.fields["proof_of_address"]

    def clean_msisdn(self) -> str:
        value = self.cleaned_data["msisdn"].strip()
        return validate_msisdn(value, self.policy.msisdn_region) if value else ""

    def clean_identity_copy(self):
        return _clean_upload(self.cleaned_data.get("identity_copy"))

    def clean_proof_of_address(self):
        return _clean_upload(self.cleaned_data.get("proof_of_address"))

    def clean(self) -> dict:
        cleaned = super().clean()
        checked = services.materials_checked(
            self.materials(), policy=self.policy, copies=self.copies(), complete=self.complete_step
        )
        _add_rule_errors(self, checked.errors)
        return cleaned

    def materials(self) -> services.MaterialsDetails:
        cleaned = self.cleaned_data
        return services.MaterialsDetails(
            customer_kind=cleaned.get("customer_kind", ""),
            document_type=cleaned.get("document_type", ""),
            original_sighted=cleaned.get("original_sighted", False),
            sim_kind=cleaned.get("sim_kind", ""),
            iccid=cleaned.get("iccid", ""),
            eid=cleaned.get("eid", ""),
            msisdn=cleaned.get("msisdn", ""),
            plan=cleaned.get("plan", ""),
        )


class ChannelForm(StepForm):
    """Step 2: how the customer registers."""

    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=Registration.Channel.choices,
        initial=Registration.Channel.COUNTER,
        widget=forms.RadioSelect,
    )
    online_reference = forms.CharField(
        label=_("Online pre-registration reference"),
        required=False,
        max_length=40,
        help_text=_("Only for an online pre-registration: the reference the customer received."),
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )

    def clean(self) -> dict:
        cleaned = super().clean()
        checked = services.channel_checked(
            channel=cleaned.get("channel", ""),
            online_reference=cleaned.get("online_reference", ""),
            complete=self.complete_step,
        )
        _add_rule_errors(self, checked.errors)
        return cleaned


class IdentityForm(StepForm):
    """Step 3: who the customer is, the adult or responsible person, and the declaration."""

    name_en = forms.CharField(
        label=_("Name in English"),
        max_length=200,
        help_text=_("As printed on the document."),
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    name_zh = forms.CharField(
        label=_("Name in Chinese characters"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    document_number = forms.CharField(
        label=_("Document number"), max_length=40, widget=forms.TextInput(attrs=NO_AUTOFILL)
    )
    date_of_birth = forms.DateField(label=_("Date of birth"), widget=_date_input())
    nationality = forms.ChoiceField(
        label=_("Nationality"), choices=[("", "---------"), *NATIONALITIES]
    )
    address = forms.CharField(
        label=_("Residential address"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, **NO_AUTOFILL}),
    )
    contact_number = forms.CharField(
        label=_("Contact number"),
        max_length=30,
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "tel"}),
    )
    email = forms.EmailField(
        label=_("E-mail"),
        required=False,
        max_length=254,
        widget=forms.EmailInput(attrs=NO_AUTOFILL),
    )
    representative_name_en = forms.CharField(
        label=_("Name in English"),
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    representative_name_zh = forms.CharField(
        label=_("Name in Chinese characters"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    representative_document_type = forms.ChoiceField(
        label=_("Identity document"), required=False, choices=()
    )
    representative_document_number = forms.CharField(
        label=_("Document number"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    representative_date_of_birth = forms.DateField(
        label=_("Date of birth"), required=False, widget=_date_input()
    )
    representative_copy = forms.FileField(
        label=_("Copy of the confirming adult's identity document"),
        required=False,
        widget=_file_input(),
    )
    declaration_accepted = forms.BooleanField(
        label=_(
            "The customer declares that the information given is true and complete and that "
            "the document shown is their own."
        ),
        required=False,
    )

    required_to_complete = services.IDENTITY_NEEDED
    file_fields = {"representative_copy": DocumentCopy.Kind.REPRESENTATIVE}

    def __init__(
        self, *args, customer_kind: str, document_type: str, submitting: bool = False, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.document_type = document_type
        self.submitting = submitting
        self.is_company = customer_kind == Person.Kind.COMPANY
        if not self.policy.chinese_name_field:
            del self.fields["name_zh"]
            del self.fields["representative_name_zh"]
        if self.is_company:
            del self.fields["date_of_birth"]
            del self.fields["nationality"]
            self.fields["name_en"].label = _("Company name in English")
            if "name_zh" in self.fields:
                self.fields["name_zh"].label = _("Company name in Chinese characters")
            self.fields["address"].label = _("Business address")
            self.fields["representative_copy"].label = _(
                "Copy of the responsible person's identity document (optional)"
            )
        self.fields["document_number"].label = DOCUMENT_NUMBER_LABELS.get(
            document_type, _("Document number")
        )
        self.fields["representative_document_type"].choices = _document_choices(
            include_business=False, blank=True
        )
        self.fields["representative_copy"].help_text = _copy_help()

    def clean_document_number(self) -> str:
        value = self.cleaned_data["document_number"].strip()
        return validate_document_number(self.document_type, value) if value else ""

    def clean_date_of_birth(self):
        value = self.cleaned_data.get("date_of_birth")
        return validate_date_of_birth(value) if value else None

    def clean_contact_number(self) -> str:
        value = self.cleaned_data["contact_number"].strip()
        return validate_msisdn(value, self.policy.msisdn_region) if value else ""

    def clean_representative_date_of_birth(self):
        value = self.cleaned_data.get("representative_date_of_birth")
        return validate_date_of_birth(value) if value else None

    def clean_representative_copy(self):
        return _clean_upload(self.cleaned_data.get("representative_copy"))

    def clean(self) -> dict:
        cleaned = super().clean()
        checked = services.identity_checked(
            self.identity(),
            policy=self.policy,
            document_type=self.document_type,
            is_company=self.is_company,
            complete=self.complete_step,
        )
        _add_rule_errors(self, checked.errors)
        if self.submitting:
            accepted = cleaned.get("declaration_accepted", False)
            _add_rule_errors(self, services.declaration_errors(accepted=accepted))
        return cleaned

    def show_required_to_complete(self) -> None:
        super().show_required_to_complete()
        if self.submitting:
            self.fields["declaration_accepted"].required = True

    def customer_fields(self) -> list[forms.BoundField]:
        return [
            self[name]
            for name in self.fields
            if not name.startswith(("representative_", "declaration"))
        ]

    def representative_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("representative_")]

    def representative_started(self) -> bool:
        """Whether anything of the adult or responsible person was entered or is wrong."""
        return any(
            field.errors or field.value() not in (None, "")
            for field in self.representative_fields()
        )

    def identity(self) -> services.IdentityDetails:
        cleaned = self.cleaned_data
        return services.IdentityDetails(
            name_en=cleaned.get("name_en", ""),
            name_zh=cleaned.get("name_zh", ""),
            document_number=cleaned.get("document_number", ""),
            date_of_birth=cleaned.get("date_of_birth"),
            nationality=cleaned.get("nationality", ""),
            address=cleaned.get("address", ""),
            contact_number=cleaned.get("contact_number", ""),
            email=cleaned.get("email", ""),
            representative=services.RepresentativeDetails(
                name_en=cleaned.get("representative_name_en", ""),
                name_zh=cleaned.get("representative_name_zh", ""),
                document_type=cleaned.get("representative_document_type", ""),
                document_number=cleaned.get("representative_document_number", ""),
                date_of_birth=cleaned.get("representative_date_of_birth"),
            ),
        )


class FindForm(forms.Form):
    """Find an approved registration; the values travel in the POST body, never in a URL."""

    by = forms.ChoiceField(
        label=_("Find by"),
        choices=[("msisdn", _("Mobile number")), ("document", _("Identity document"))],
        initial="msisdn",
        widget=forms.RadioSelect,
    )
    msisdn = forms.CharField(
        label=_("Mobile number"),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "tel"}),
    )
    document_type = forms.ChoiceField(label=_("Identity document"), required=False, choices=())
    document_number = forms.CharField(
        label=_("Document number"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.fields["document_type"].choices = _document_choices(blank=True)

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("by") == "msisdn":
            value = (cleaned.get("msisdn") or "").strip()
            if not value:
                self.add_error("msisdn", services.MISSING["msisdn"])
            else:
                try:
                    cleaned["msisdn"] = validate_msisdn(value, self.policy.msisdn_region)
                except ValidationError as exc:
                    self.add_error("msisdn", exc)
        elif cleaned.get("by") == "document":
            document_type = cleaned.get("document_type")
            value = (cleaned.get("document_number") or "").strip()
            if not document_type:
                self.add_error("document_type", services.MISSING["document_type"])
            if not value:
                self.add_error("document_number", services.MISSING["document_number"])
            elif document_type:
                try:
                    cleaned["document_number"] = validate_document_number(document_type, value)
                except ValidationError as exc:
                    self.add_error("document_number", exc)
        return cleaned


class UpdateForm(forms.Form):
    """An update of information, recorded for a supervisor to approve."""

    new_address = forms.CharField(
        label=_("New residential address"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, **NO_AUTOFILL}),
    )
    new_contact_number = forms.CharField(
        label=_("New contact number"),
        max_length=30,
        required=False,
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "tel"}),
    )
    new_email = forms.EmailField(
        label=_("New e-mail"),
        max_length=254,
        required=False,
        widget=forms.EmailInput(attrs=NO_AUTOFILL),
    )
    new_document_type = forms.ChoiceField(
        label=_("Renewed identity document"), required=False, choices=()
    )
    new_document_number = forms.CharField(
        label=_("Number of the renewed document"),
        max_length=40,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    renewed_copy = forms.FileField(
        label=_("Copy of the renewed document"), required=False, widget=_file_input()
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.fields["new_document_type"].choices = _document_choices(blank=True)
        self.fields["renewed_copy"].help_text = _copy_help()

    def clean_new_contact_number(self) -> str:
        value = self.cleaned_data["new_contact_number"].strip()
        return validate_msisdn(value, self.policy.msisdn_region) if value else ""

    def clean_renewed_copy(self):
        return _clean_upload(self.cleaned_data.get("renewed_copy"))

    def clean(self) -> dict:
        cleaned = super().clean()
        # Without the customer's kind: the service, which knows it, refuses a document of the
        # wrong kind beside the field.
        _add_rule_errors(self, services.update_checked(self.change(), policy=self.policy).errors)
        return cleaned

    def change(self) -> services.ChangeDetails:
        cleaned = self.cleaned_data
        return services.ChangeDetails(
            new_address=cleaned.get("new_address", ""),
            new_contact_number=cleaned.get("new_contact_number", ""),
            new_email=cleaned.get("new_email", ""),
            new_document_type=cleaned.get("new_document_type", ""),
            new_document_number=cleaned.get("new_document_number", ""),
            renewed_copy=cleaned.get("renewed_copy"),
        )


class TerminationForm(forms.Form):
    termination_reason = forms.CharField(
        label=_("Reason for the termination"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say why the registration is to be terminated.")},
    )


STEP_FORMS: tuple[type[StepForm], ...] = (MaterialsForm, ChannelForm, IdentityForm)


def add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put a service's field-keyed messages beside their fields, the rest above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        elif field == NON_FIELD_ERRORS:
            form.add_error(None, errors)
        else:
            # A field of another step: name it, so staff know where to go back to.
            label = field_label(field, forms=STEP_FORMS)
            form.add_error(
                None,
                [
                    ValidationError(format_lazy("{}: {}", label, message))
                    for message in ValidationError(errors).messages
                ],
            )
