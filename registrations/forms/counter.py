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

from registrations import documents, selectors, services
from registrations.forms.common import NATIONALITIES
from registrations.labels import field_label
from registrations.models import (
    DocumentCopy,
    DocumentType,
    Person,
    Registration,
    Store,
    TerminationCause,
    User,
)
from registrations.policy import current_policy
from registrations.validators import (
    BUSINESS_REGISTRATION,
    validate_date_of_birth,
    validate_document_number,
    validate_eid,
    validate_iccid,
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

# Beside a field that disagrees with another registration of the same document number.
DISCREPANCY_MESSAGES = {
    "name_en": _("This name differs from the one on another registration of this document."),
    "name_zh": _("This name differs from the one on another registration of this document."),
    "date_of_birth": _(
        "This date of birth differs from the one on another registration of this document."
    ),
}


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
    notice_language = forms.ChoiceField(
        label=_("Messages to the customer in"),
        choices=Registration.NoticeLanguage,
        # Left out, the language already chosen stays.
        required=False,
        widget=forms.RadioSelect,
        help_text=_("The SMS and e-mail about this registration's review and changes."),
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
    discrepancy_confirmed = forms.BooleanField(
        label=_(
            "The customer confirms these details; the record will be flagged to the supervisor."
        ),
        required=False,
    )

    required_to_complete = services.IDENTITY_NEEDED
    file_fields = {"representative_copy": DocumentCopy.Kind.REPRESENTATIVE}

    def __init__(
        self,
        *args,
        customer_kind: str,
        document_type: str,
        submitting: bool = False,
        registration: Registration | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.document_type = document_type
        self.submitting = submitting
        # The record being entered: with it, the details are checked against the other
        # registrations of the document (services.identity_discrepancy).
        self.registration = registration
        self.discrepancy = None
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
        self.check_consistency(cleaned)
        return cleaned

    def check_consistency(self, cleaned: dict) -> None:
        """Stop when the name or date of birth disagrees with another registration of this
        document, unless the customer confirms the details (the record is then flagged)."""
        number = cleaned.get("document_number")
        if self.registration is None or not number or self.has_error("document_number"):
            return
        self.discrepancy = services.identity_discrepancy(
            document_type=self.document_type,
            document_number=number,
            name_en=cleaned.get("name_en", ""),
            name_zh=cleaned.get("name_zh", ""),
            date_of_birth=cleaned.get("date_of_birth"),
            exclude_pk=self.registration.pk,
        )
        if not self.discrepancy or cleaned.get("discrepancy_confirmed"):
            return
        for field in self.discrepancy.fields:
            if field in self.fields and not self.has_error(field):
                self.add_error(field, DISCREPANCY_MESSAGES[field])
        self.add_error(
            None,
            format_lazy(
                "{} {}",
                _("The details entered differ from another registration of this document number:"),
                self.discrepancy_labels(),
            ),
        )
        self.add_error(
            "discrepancy_confirmed",
            _(
                "Check the details with the customer and correct them, or tick this box to go "
                "on with them."
            ),
        )

    def discrepancy_labels(self) -> str:
        """The fields that disagree, as this form labels them."""
        fields = self.discrepancy.fields if self.discrepancy else []
        return ", ".join(str(self.fields[name].label) for name in fields if name in self.fields)

    def show_required_to_complete(self) -> None:
        super().show_required_to_complete()
        if self.submitting:
            self.fields["declaration_accepted"].required = True

    def customer_fields(self) -> list[forms.BoundField]:
        return [
            self[name]
            for name in self.fields
            if not name.startswith(("representative_", "declaration", "discrepancy"))
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


class EarlyCheckForm(forms.Form):
    """The values an early check at the identity step posts: the document number and what it
    is compared with. Anything that does not fit is left out of the check, never refused."""

    document_number = forms.CharField(max_length=40)
    name_en = forms.CharField(max_length=200, required=False)
    name_zh = forms.CharField(max_length=100, required=False)
    date_of_birth = forms.DateField(required=False)

    def __init__(self, *args, document_type: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.document_type = document_type

    def clean_document_number(self) -> str:
        return validate_document_number(
            self.document_type, self.cleaned_data["document_number"].strip()
        )

    def values(self) -> dict | None:
        """The values to check, or None when there is no valid document number to check."""
        self.is_valid()
        cleaned = self.cleaned_data
        if not cleaned.get("document_number"):
            return None
        return {
            "document_number": cleaned["document_number"],
            "name_en": (cleaned.get("name_en") or "").strip(),
            "name_zh": (cleaned.get("name_zh") or "").strip(),
            "date_of_birth": cleaned.get("date_of_birth"),
        }


class ServingStoreMixin:
    """The store where the customer is served, among the user's own (the first by default):
    any store may serve a customer, and what it asks for records where it was asked."""

    def add_store_field(self, user: User) -> None:
        stores = user.stores.filter(is_active=True).order_by("code")
        self.fields["at_store"] = forms.ModelChoiceField(
            label=_("Serving at store"),
            queryset=stores,
            initial=stores.first(),
            required=False,
            empty_label=None,
        )
        if len(stores) <= 1:
            self.fields["at_store"].widget = forms.HiddenInput()
        self.first_store = stores.first()

    def serving_store(self) -> Store | None:
        return self.cleaned_data.get("at_store") or self.first_store


FIND_KEYS = [
    ("document", _("Identity document")),
    ("msisdn", _("Mobile number")),
    ("sim", _("ICCID or EID")),
    ("reference", _("Reference")),
]


class FindForm(forms.Form):
    """Find a registration of any store by one key the customer gives; the values travel in
    the POST body, never in a URL."""

    by = forms.ChoiceField(
        label=_("Find by"), choices=FIND_KEYS, initial="document", widget=forms.RadioSelect
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
    sim = forms.CharField(
        label=_("ICCID or EID"),
        max_length=48,
        required=False,
        help_text=_("The 19 or 20 digits on a SIM card, or the 32 digits of an eSIM."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "numeric"}),
    )
    reference = forms.CharField(
        label=_("Reference"),
        max_length=20,
        required=False,
        help_text=_("As printed on the customer's receipt: XXXXX-XXXXX."),
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.fields["document_type"].choices = _document_choices(blank=True)

    MISSING = {
        "msisdn": _("Enter the customer's mobile number."),
        "document_number": _("Enter the number of the customer's document."),
        "sim": _("Enter the ICCID of the SIM card or the EID of the eSIM."),
        "reference": _("Enter the reference printed on the customer's receipt."),
    }

    def _required(self, name: str) -> str:
        value = (self.cleaned_data.get(name) or "").strip()
        if not value:
            self.add_error(name, self.MISSING[name])
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        by = cleaned.get("by")
        try:
            if by == "msisdn" and (value := self._required("msisdn")):
                cleaned["msisdn"] = validate_msisdn(value, self.policy.msisdn_region)
            elif by == "document":
                document_type = cleaned.get("document_type")
                if not document_type:
                    self.add_error("document_type", services.MISSING["document_type"])
                value = self._required("document_number")
                if value and document_type:
                    cleaned["document_number"] = validate_document_number(document_type, value)
            elif by == "sim" and (value := self._required("sim")):
                digits = "".join(value.split()).replace("-", "")
                cleaned["sim"] = validate_eid(value) if len(digits) > 20 else validate_iccid(value)
            elif by == "reference" and (value := self._required("reference")):
                cleaned["reference"] = _reference(value)
        except ValidationError as exc:
            field = {"document": "document_number"}.get(by, by)
            self.add_error(field, exc)
        return cleaned

    def key(self) -> str:
        """What kind of key was searched, as the audit names it (never its value)."""
        by = self.cleaned_data["by"]
        if by == "sim":
            return "eid" if len(self.cleaned_data["sim"]) == 32 else "iccid"
        return by

    def lookup(self) -> dict[str, str]:
        """The selector's arguments for the key searched."""
        data, key = self.cleaned_data, self.key()
        if key == "document":
            return {
                "document_type": data["document_type"],
                "document_number": data["document_number"],
            }
        if key in {"iccid", "eid"}:
            return {key: data["sim"]}
        return {key: data[key]}


REFERENCE_FORMAT = _(
    "A reference has ten letters and digits, as printed on the receipt: XXXXX-XXXXX."
)


def _reference(value: str) -> str:
    """A reference as typed, in its printed form; an error when it cannot be one."""
    reference = selectors.registration_reference_normalise(value)
    if not reference:
        raise ValidationError(REFERENCE_FORMAT, code="reference_format")
    return reference


class ServicePurposeForm(forms.Form):
    """Why the counter opens a registration for service: asked once, recorded in the audit."""

    purpose = forms.ChoiceField(
        label=_("Purpose of the service"),
        choices=services.ServicePurpose.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Choose why you are opening this registration.")},
    )


class IdentityCheckForm(ServingStoreMixin, forms.Form):
    """The customer's document, name and date of birth, checked again against the record."""

    document_type = forms.ChoiceField(label=_("Identity document"), choices=())
    document_number = forms.CharField(
        label=_("Document number"), max_length=40, widget=forms.TextInput(attrs=NO_AUTOFILL)
    )
    name_en = forms.CharField(
        label=_("Name in English"),
        max_length=200,
        required=False,
        help_text=_("As printed on the document."),
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    name_zh = forms.CharField(
        label=_("Name in Chinese characters"),
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs=NO_AUTOFILL),
    )
    date_of_birth = forms.DateField(label=_("Date of birth"), required=False, widget=_date_input())

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["document_type"].choices = _document_choices()
        if not current_policy().chinese_name_field:
            del self.fields["name_zh"]
        self.add_store_field(user)

    def clean(self) -> dict:
        cleaned = super().clean()
        document_type, number = cleaned.get("document_type"), cleaned.get("document_number")
        if document_type and number:
            try:
                cleaned["document_number"] = validate_document_number(document_type, number)
            except ValidationError as exc:
                self.add_error("document_number", exc)
        if (
            not (cleaned.get("name_en") or "").strip()
            and not (cleaned.get("name_zh") or "").strip()
        ):
            self.add_error("name_en", _("Enter the customer's name as printed on the document."))
        if (
            document_type != BUSINESS_REGISTRATION
            and not cleaned.get("date_of_birth")
            and "date_of_birth" not in self.errors
        ):
            self.add_error("date_of_birth", _("Enter the customer's date of birth."))
        return cleaned

    def identity(self) -> services.IdentityCheck:
        cleaned = self.cleaned_data
        return services.IdentityCheck(
            document_type=cleaned.get("document_type", ""),
            document_number=cleaned.get("document_number", ""),
            name_en=cleaned.get("name_en", ""),
            name_zh=cleaned.get("name_zh", ""),
            date_of_birth=cleaned.get("date_of_birth"),
        )


def _sim_loss_field(required: bool = True) -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("What happened to the SIM"),
        choices=Registration.SimLoss.choices,
        required=required,
        widget=forms.RadioSelect,
        error_messages={"required": services.SIM_LOSS_MISSING},
    )


class LossReportForm(IdentityCheckForm):
    """A lost, stolen or damaged SIM: the registration is suspended at once."""

    sim_loss = _sim_loss_field()


class ReplacementForm(IdentityCheckForm):
    """A new SIM on the same mobile number; on an approved registration the loss is reported in
    the same step."""

    sim_loss = _sim_loss_field()
    new_sim_kind = forms.ChoiceField(
        label=_("New SIM"),
        choices=Registration.SimKind.choices,
        initial=Registration.SimKind.PHYSICAL,
        widget=forms.RadioSelect,
    )
    new_iccid = forms.CharField(
        label=_("ICCID of the new SIM"),
        required=False,
        max_length=40,
        help_text=_("For a physical SIM: the 19 or 20 digits printed on the card."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "numeric"}),
    )
    new_eid = forms.CharField(
        label=_("EID of the new eSIM"),
        required=False,
        max_length=48,
        help_text=_("For an eSIM: the 32 digits shown in the device's settings."),
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "inputmode": "numeric"}),
    )

    def __init__(self, *args, suspended: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if suspended:
            # The loss was reported already.
            del self.fields["sim_loss"]

    def clean(self) -> dict:
        cleaned = super().clean()
        iccid, eid, errors = services.replacement_sim_checked(
            sim_kind=cleaned.get("new_sim_kind", ""),
            iccid=cleaned.get("new_iccid", ""),
            eid=cleaned.get("new_eid", ""),
        )
        cleaned["new_iccid"], cleaned["new_eid"] = iccid, eid
        _add_rule_errors(self, errors)
        return cleaned


class UpdateForm(ServingStoreMixin, forms.Form):
    """An update of information, recorded for a supervisor of the record's store to approve."""

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

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.policy = current_policy()
        self.fields["new_document_type"].choices = _document_choices(blank=True)
        self.fields["renewed_copy"].help_text = _copy_help()
        self.add_store_field(user)

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


class TerminationForm(ServingStoreMixin, forms.Form):
    termination_cause = forms.ChoiceField(
        label=_("Why the registration ends"),
        choices=TerminationCause.choices,
        initial=TerminationCause.CUSTOMER_REQUEST,
        help_text=_(
            "The death of the subscriber is reported by a relative with the death certificate; "
            "the record is then kept for the period the policy sets for that cause."
        ),
        # A form sent without it (an older page) is a customer's own request.
        required=False,
    )
    termination_reason = forms.CharField(
        label=_("Reason for the termination"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": _("Say why the registration is to be terminated.")},
    )

    def __init__(self, *args, user: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_store_field(user)

    def clean_termination_cause(self) -> str:
        return self.cleaned_data["termination_cause"] or TerminationCause.CUSTOMER_REQUEST


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


class RecordSearchForm(forms.Form):
    """Find a record in the counter's lists by its reference, however it is typed. Sent by
    POST: whatever lands in the box (a name or a document number typed there by mistake
    included) stays out of URLs and logs."""

    reference = forms.CharField(
        label=_("Reference"),
        max_length=40,
        widget=forms.TextInput(attrs={**NO_AUTOFILL, "placeholder": "XXXXX-XXXXX"}),
    )

    def clean_reference(self) -> str:
        return _reference(self.cleaned_data["reference"])
