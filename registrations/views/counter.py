"""The counter's pages: a draft step by step (materials, channel, identity), the record page
(step 4) and its receipt; and serving a customer of any store: finding their registration,
opening it for service, asking for an update, a termination or a replacement SIM, reporting a
lost SIM.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods
from django.views.generic import TemplateView

from registrations import roles, selectors, services
from registrations.audit import Origin
from registrations.crypto import EncryptedFieldMixin
from registrations.forms.counter import (
    ACTIONS,
    COMPLETE_ACTIONS,
    ChannelForm,
    EarlyCheckForm,
    FindForm,
    IdentityCheckForm,
    IdentityForm,
    LossReportForm,
    MaterialsForm,
    NewRegistrationForm,
    RecordSearchForm,
    ReplacementForm,
    ServicePurposeForm,
    StepForm,
    TerminationForm,
    UpdateForm,
    add_service_errors,
)
from registrations.labels import choice_labels, field_label, reason_label, role_label
from registrations.masking import mask_mobile_number, mask_name, mask_person_document
from registrations.models import (
    AuditEvent,
    PendingChange,
    Person,
    ReasonCode,
    Registration,
)
from registrations.policy import current_policy
from registrations.validators import format_document_number
from registrations.views.common import RoleRequiredMixin, registration_rows

# The counter flow -------------------------------------------------------------------------------

STEP_URLS = {1: "counter-materials", 2: "counter-channel", 3: "counter-identity"}
STEP_LABELS = {
    1: gettext_lazy("Materials"),
    2: gettext_lazy("Channel"),
    3: gettext_lazy("Identity and declaration"),
    4: gettext_lazy("Status and receipt"),
}
# Where a returned record is corrected: a reason about the document or the materials is fixed
# on step 1 (the copy, the original sighted); the others concern the customer on step 3.
CORRECTION_STEPS = {
    ReasonCode.DOCUMENT_UNREADABLE: 1,
    ReasonCode.DOCUMENT_MISMATCH: 1,
    ReasonCode.DOCUMENT_EXPIRED: 1,
    ReasonCode.MATERIALS_INCOMPLETE: 1,
    ReasonCode.MINOR_WITHOUT_ADULT: 3,
}


# The customer's encrypted fields. A page loads (and so decrypts) only those it shows.
PERSON_ENCRYPTED = tuple(
    field.name for field in Person._meta.concrete_fields if isinstance(field, EncryptedFieldMixin)
)
# The masked document number is all of the customer that most counter pages show.
SHOWS_DOCUMENT = ("document_number",)


def _counter_registration(
    request: HttpRequest,
    reference: str,
    *,
    shows: tuple[str, ...] = (),
    representative: bool = False,
) -> Registration:
    """A registration of the user's stores, or 404: other stores' records do not exist here.

    Of the customer's encrypted fields only those named in `shows` are loaded; the confirming
    adult or responsible person only with `representative` (the Identity step). The supervisor's
    comment loads when a page shows it, i.e. for a returned record.
    """
    related = ["store", "customer", "created_by"] + (["representative"] if representative else [])
    hidden = [f"customer__{name}" for name in PERSON_ENCRYPTED if name not in shows]
    hidden.append("comment")
    return get_object_or_404(
        selectors.registration_list_for_counter(user=request.user)
        .select_related(*related)
        .defer(*hidden),
        reference=reference,
    )


def _step_url(registration: Registration, step: int) -> str:
    if step > len(STEP_URLS):
        return reverse("counter-record", args=[registration.reference])
    return reverse(STEP_URLS[step], args=[registration.reference])


def _correction_step(registration: Registration) -> int:
    """The step a returned record opens at, by the supervisor's reason."""
    step = CORRECTION_STEPS.get(registration.reason_code, len(STEP_URLS))
    return min(step, registration.furthest_step)


def _resume_url(registration: Registration) -> str:
    """Where "Continue the draft" or "Correct and resubmit" leads; the record page otherwise."""
    if registration.status == Registration.Status.RETURNED:
        return _step_url(registration, _correction_step(registration))
    if registration.status in services.EDITABLE_STATUSES:
        return _step_url(registration, registration.furthest_step)
    return reverse("counter-record", args=[registration.reference])


def _progress(registration: Registration, current: int) -> list[dict]:
    """Steps 1-4 for the progress bar: steps already open are links."""
    editable = registration.status in services.EDITABLE_STATUSES
    to_correct = (
        _correction_step(registration)
        if registration.status == Registration.Status.RETURNED
        else None
    )
    steps = []
    for number, label in STEP_LABELS.items():
        if number <= len(STEP_URLS):
            reachable = editable and number <= registration.furthest_step
        else:
            reachable = not editable
        steps.append(
            {
                "number": number,
                "label": label,
                "url": _step_url(registration, number) if reachable else "",
                "current": number == current,
                "done": number < current or (number < 4 and not editable),
                "to_correct": number == to_correct,
            }
        )
    return steps


class CounterMixin(RoleRequiredMixin):
    required_permission = roles.RECORD


class NewRegistrationView(CounterMixin, View):
    """GET: a page with the start button. POST: a new draft, then step 1."""

    template_name = "registrations/counter/new.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = NewRegistrationForm(user=request.user)
        return render(request, self.template_name, {"form": form})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = NewRegistrationForm(request.POST, user=request.user)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        registration = services.registration_create_draft(
            store=form.cleaned_data["store"], actor=request.user, origin=Origin.of(request)
        )
        return redirect("counter-materials", registration.reference)


@method_decorator(sensitive_post_parameters(), name="dispatch")
class CounterStepView(CounterMixin, View):
    """One step of the flow. Every button saves to the draft row; nothing goes to the session."""

    step: int = 1
    form_class: type[StepForm] = StepForm
    template_name = ""
    # The page as the audit event of its showing names it.
    audit_page = ""

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if (closed := self.redirect_if_closed(registration)) is not None:
            return closed
        form = self.form_class(initial=self.initial(registration), **self.form_kwargs(registration))
        self.record_viewed(registration)
        return self.render(registration, form)

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if (closed := self.redirect_if_closed(registration)) is not None:
            return closed
        action = request.POST.get("action", "save")
        if action not in ACTIONS or (action == "submit" and self.step != len(STEP_URLS)):
            action = "save"
        form = self.form_class(
            request.POST,
            request.FILES,
            complete_step=action in COMPLETE_ACTIONS,
            **self.form_kwargs(registration, submitting=action == "submit"),
        )
        form.show_copies_on_file(selectors.document_copy_list_on_file(registration=registration))
        valid = form.is_valid()
        origin = Origin.of(request)
        self.checked(registration, form, origin)
        # A good file survives a post whose other fields fail: browsers cannot refill file inputs.
        for kind, upload in form.uploads().items():
            try:
                services.document_copy_store(
                    registration=registration,
                    kind=kind,
                    upload=upload,
                    actor=request.user,
                    origin=origin,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
                valid = False
        context: dict = {}
        if valid:
            try:
                self.save(registration, form, origin, complete_step=action in COMPLETE_ACTIONS)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                if action != "submit":
                    return self.saved(registration, action)
                try:
                    services.registration_submit(
                        registration=registration,
                        actor=request.user,
                        origin=origin,
                        declaration_accepted=form.cleaned_data["declaration_accepted"],
                    )
                except ValidationError as exc:
                    add_service_errors(form, exc)
                    context["saved_not_submitted"] = True
                else:
                    messages.success(request, _("Submitted for review."))
                    return redirect("counter-record", registration.reference)
        registration.refresh_from_db()
        return self.render(registration, form, **context)

    def registration(self, request: HttpRequest, reference: str) -> Registration:
        return _counter_registration(request, reference)

    def redirect_if_closed(self, registration: Registration) -> HttpResponse | None:
        """Send the user where the record can be seen when this step cannot be opened."""
        if registration.status not in services.EDITABLE_STATUSES:
            messages.info(
                self.request,
                _("This registration was submitted and can no longer be changed at the counter."),
            )
            return redirect("counter-record", registration.reference)
        if self.step > registration.furthest_step:
            return redirect(_step_url(registration, registration.furthest_step))
        return None

    def form_kwargs(self, registration: Registration, submitting: bool = False) -> dict:
        return {}

    def initial(self, registration: Registration) -> dict:
        return {}

    def checked(self, registration: Registration, form: StepForm, origin: Origin) -> None:
        """Record what validating the step read beyond the record itself (none by default)."""

    def record_viewed(self, registration: Registration) -> None:
        """Each step shows what was saved on the record: every showing is an audit event."""
        services.registration_view_record(
            actor=self.request.user,
            registration=registration,
            origin=Origin.of(self.request),
            page=self.audit_page,
        )

    def save(
        self, registration: Registration, form: StepForm, origin: Origin, *, complete_step: bool
    ) -> None:
        raise NotImplementedError

    def saved(self, registration: Registration, action: str) -> HttpResponse:
        if action == "save":
            messages.success(self.request, _("Draft saved."))
            return redirect(_step_url(registration, self.step))
        if action == "back":
            return redirect(_step_url(registration, max(self.step - 1, 1)))
        return redirect(_step_url(registration, self.step + 1))

    def render(self, registration: Registration, form: StepForm, **extra) -> HttpResponse:
        on_file = selectors.document_copy_list_on_file(registration=registration)
        form.show_required_to_complete()
        form.show_copies_on_file(on_file)
        context = {
            "registration": registration,
            "form": form,
            "step": self.step,
            "progress": _progress(registration, self.step),
            "on_file": on_file,
            "policy": current_policy(),
            **extra,
        }
        return render(self.request, self.template_name, context)


class MaterialsView(CounterStepView):
    step = 1
    form_class = MaterialsForm
    template_name = "registrations/counter/materials.html"
    audit_page = "materials"

    def initial(self, registration: Registration) -> dict:
        customer = registration.customer
        initial = {
            "original_sighted": registration.original_sighted,
            "iccid": registration.iccid,
            "eid": registration.eid,
            "msisdn": registration.msisdn,
            "plan": registration.plan,
        }
        if registration.sim_kind:
            initial["sim_kind"] = registration.sim_kind
        if customer is not None:
            initial |= {"customer_kind": customer.kind, "document_type": customer.document_type}
        return initial

    def save(self, registration, form, origin, *, complete_step):
        services.registration_save_materials(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            materials=form.materials(),
            complete_step=complete_step,
        )


class ChannelView(CounterStepView):
    step = 2
    form_class = ChannelForm
    template_name = "registrations/counter/channel.html"
    audit_page = "channel"

    def initial(self, registration: Registration) -> dict:
        return {"channel": registration.channel, "online_reference": registration.online_reference}

    def save(self, registration, form, origin, *, complete_step):
        services.registration_save_channel(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            channel=form.cleaned_data["channel"],
            online_reference=form.cleaned_data.get("online_reference", ""),
            complete_step=complete_step,
        )


class IdentityView(CounterStepView):
    step = 3
    form_class = IdentityForm
    template_name = "registrations/counter/identity.html"
    audit_page = "identity"

    def registration(self, request: HttpRequest, reference: str) -> Registration:
        return _counter_registration(
            request, reference, shows=PERSON_ENCRYPTED, representative=True
        )

    def form_kwargs(self, registration: Registration, submitting: bool = False) -> dict:
        customer = registration.customer
        return {
            "customer_kind": customer.kind,
            "document_type": customer.document_type,
            "submitting": submitting,
            "registration": registration,
        }

    def redirect_if_closed(self, registration: Registration) -> HttpResponse | None:
        if registration.customer is None:
            return redirect("counter-materials", registration.reference)
        return super().redirect_if_closed(registration)

    def initial(self, registration: Registration) -> dict:
        customer, rep = registration.customer, registration.representative
        initial = {
            "name_en": customer.name_en,
            "name_zh": customer.name_zh,
            "document_number": format_document_number(
                customer.document_type, customer.document_number
            )
            if customer.document_number
            else "",
            "date_of_birth": customer.date_of_birth,
            "nationality": customer.nationality,
            "address": customer.address,
            "contact_number": customer.contact_number,
            "email": customer.email,
            # Until the step is first saved, the customer hears in the counter's language.
            "notice_language": registration.notice_language
            if customer.name_en or customer.name_zh
            else _page_notice_language(),
        }
        if rep is not None:
            initial |= {
                "representative_name_en": rep.name_en,
                "representative_name_zh": rep.name_zh,
                "representative_document_type": rep.document_type,
                "representative_document_number": format_document_number(
                    rep.document_type, rep.document_number
                )
                if rep.document_number
                else "",
                "representative_date_of_birth": rep.date_of_birth,
            }
        return initial

    def checked(self, registration: Registration, form: StepForm, origin: Origin) -> None:
        # Only a check that read other customers' data is a search worth recording.
        if form.discrepancy is not None and form.discrepancy.compared:
            services.registration_consistency_check_record(
                registration=registration,
                actor=self.request.user,
                origin=origin,
                discrepancy=form.discrepancy,
            )

    def save(self, registration, form, origin, *, complete_step):
        services.registration_save_identity(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            identity=form.identity(),
            notice_language=form.cleaned_data.get("notice_language", ""),
            complete_step=complete_step,
        )


def _page_notice_language() -> str:
    chinese = (get_language() or "").startswith("zh")
    return Registration.NoticeLanguage.CHINESE if chinese else Registration.NoticeLanguage.ENGLISH


# The most an early check posts: a document number, two names and a date, with the CSRF token.
EARLY_CHECK_MAX_BYTES = 2048


@method_decorator(sensitive_post_parameters(), name="dispatch")
class EarlyCheckView(CounterMixin, View):
    """POST the document number (and names, date of birth) typed at the identity step: a small
    fragment for the page's script to show under the fields, without reloading the page, of
    what the customer holds against the limit and any disagreement with other registrations.

    The values travel in the body only. Anything that cannot be checked (no valid number, a
    record no longer open, a body too large) gets an empty fragment: the page works on without
    it, and the step checks again when it is saved.
    """

    http_method_names = ["post"]
    template_name = "registrations/counter/_early_check.html"

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = _counter_registration(request, reference)
        customer = registration.customer
        if (
            customer is None
            or registration.status not in services.EDITABLE_STATUSES
            or _content_length(request) > EARLY_CHECK_MAX_BYTES
        ):
            return HttpResponse("")
        form = EarlyCheckForm(request.POST, document_type=customer.document_type)
        values = form.values()
        if values is None:
            return HttpResponse("")
        try:
            check = services.registration_early_check(
                registration=registration,
                actor=request.user,
                origin=Origin.of(request),
                **values,
            )
        except ValidationError:
            return HttpResponse("")
        plans = choice_labels(Registration.Plan)
        return render(
            request,
            self.template_name,
            {
                "check": check,
                "counts": [
                    {"count": count, "label": plans.get(count.plan, count.plan)}
                    for count in check.counts
                ],
                "is_company": customer.kind == Person.Kind.COMPANY,
                "discrepancy_labels": ", ".join(
                    str(IdentityForm.base_fields[name].label) for name in check.discrepancy.fields
                ),
            },
        )


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return EARLY_CHECK_MAX_BYTES + 1


class ResumeView(CounterMixin, View):
    """A draft opens at the furthest step saved, a returned record where its reason is
    corrected; anything else at its page."""

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        return redirect(_resume_url(_counter_registration(request, reference)))


class RecordView(CounterMixin, TemplateView):
    """Step 4 and the counter's record page: status, SIM, copies on file, pending changes."""

    template_name = "registrations/counter/record.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        request = self.request
        registration = _counter_registration(
            request, self.kwargs["reference"], shows=SHOWS_DOCUMENT
        )
        services.registration_view_record(
            actor=request.user, registration=registration, origin=Origin.of(request), page="record"
        )
        editable = registration.status in services.EDITABLE_STATUSES
        # Kind, status, date, who and the names of the changed fields: none of the new values.
        changes = list(
            registration.changes.select_related("requested_by")
            .select_related("requested_at_store")
            .only(
                "kind",
                "status",
                "changed_fields",
                "new_sim_kind",
                "new_iccid",
                "new_eid",
                "requested_at",
                "registration_id",
                "requested_by__username",
                "requested_at_store__code",
            )
            .order_by("-pk")
        )
        for change in changes:
            # A replacement names the registration's SIM fields; the others the customer's.
            updates_person = change.kind != PendingChange.Kind.REPLACEMENT
            change.field_labels = [
                field_label(name, change=updates_person) for name in change.changed_fields
            ]
        is_draft = registration.status == Registration.Status.DRAFT
        pending = any(change.status == PendingChange.Status.PENDING for change in changes)
        actions = [
            {
                "name": action,
                "label": SERVICE_ACTION_LABELS[action],
                "url": reverse(f"counter-{action}", args=[registration.reference]),
            }
            for action in selectors.registration_service_actions(
                registration=registration, change_pending=pending
            )
        ]
        context |= {
            "registration": registration,
            # A returned record is at its status, whatever step it will be corrected on.
            "progress": _progress(registration, registration.furthest_step if is_draft else 4),
            "resume_url": _resume_url(registration) if editable else "",
            "masked_document": mask_person_document(registration.customer),
            "copies": list(selectors.document_copy_list_in_force(registration=registration)),
            "copies_viewable": selectors.document_copy_can_view_of(
                user=request.user, registration=registration
            ),
            "history": list(registration.history.select_related("actor").defer("comment")),
            "changes": changes,
            "editable": editable,
            "change_waiting": pending
            and registration.status
            in (Registration.Status.APPROVED, Registration.Status.SUSPENDED),
            "actions": actions,
        }
        return context


class ReceiptView(CounterMixin, TemplateView):
    template_name = "registrations/counter/receipt.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        registration = _counter_registration(request, kwargs["reference"], shows=SHOWS_DOCUMENT)
        if registration.status == Registration.Status.DRAFT:
            messages.info(request, _("A receipt is printed once the registration is submitted."))
            return redirect("counter-resume", registration.reference)
        services.registration_view_receipt(
            actor=request.user, registration=registration, origin=Origin.of(request)
        )
        context = self.get_context_data(
            registration=registration, masked_document=mask_person_document(registration.customer)
        )
        return self.render_to_response(context)


# Serving a customer of any store --------------------------------------------------------------

# The counter's actions on a registration it serves, as the pages and buttons name them.
SERVICE_ACTION_LABELS = {
    "update": gettext_lazy("Update information"),
    "terminate": gettext_lazy("Terminate"),
    "loss": gettext_lazy("Report a lost, stolen or damaged SIM"),
    "replace": gettext_lazy("Replace the SIM"),
    "subject-report": gettext_lazy("The customer's own report"),
}
# Which actions each purpose of a service leads to.
PURPOSE_ACTIONS = {
    services.ServicePurpose.UPDATE: ("update",),
    services.ServicePurpose.TERMINATION: ("terminate",),
    services.ServicePurpose.SIM_LOSS: ("loss", "replace"),
    services.ServicePurpose.ENQUIRY: (),
    services.ServicePurpose.SUBJECT_REPORT: ("subject-report",),
}
# Actions open on a registration in any status: the customer may always see their own data.
ALWAYS_OPEN_ACTIONS = ("subject-report",)
# The names the service page shows, masked.
SHOWS_NAMES = ("document_number", "name_en", "name_zh")


def _service_registration(
    request: HttpRequest, reference: str, *, shows: tuple[str, ...] = SHOWS_DOCUMENT
) -> Registration:
    """A registration of any store (drafts excepted) for the counter to serve, or 404.

    Only the customer's fields in `shows` are loaded; a page shows them masked."""
    hidden = [f"customer__{name}" for name in PERSON_ENCRYPTED if name not in shows]
    hidden.append("comment")
    return get_object_or_404(
        selectors.registration_list_for_service(user=request.user)
        .select_related("store", "customer", "created_by")
        .defer(*hidden),
        reference=reference,
    )


def _is_own_store(request: HttpRequest, registration: Registration) -> bool:
    return request.user.stores.filter(pk=registration.store_id).exists()


def _service_url(registration: Registration, purpose: str) -> str:
    return f"{reverse('counter-service', args=[registration.reference])}?purpose={purpose}"


def _done_url(request: HttpRequest, registration: Registration, purpose: str) -> str:
    """Where the counter goes after a service: the record page of its own store's record, the
    service page of another store's (whose record page it does not browse)."""
    if _is_own_store(request, registration):
        return reverse("counter-record", args=[registration.reference])
    return _service_url(registration, purpose)


def _purpose_of(request: HttpRequest) -> str:
    """The purpose the service page was opened with (a code), if any."""
    purpose = request.GET.get("purpose", "")
    return purpose if purpose in services.ServicePurpose.values else ""


@method_decorator(sensitive_post_parameters(), name="dispatch")
class FindView(CounterMixin, View):
    """Find a registration of any store, in any status but draft, by one key the customer
    gives: POST only, so no value is ever in a URL. Each search is an audit event naming the
    kind of key and how many records it found."""

    template_name = "registrations/counter/find.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": FindForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = FindForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        found = selectors.registration_find_at_counter(user=request.user, **form.lookup())
        more = len(found) > selectors.FIND_LIMIT
        found = found[: selectors.FIND_LIMIT]
        services.registration_view_search(
            actor=request.user,
            origin=Origin.of(request),
            by=form.key(),
            # Which records were listed, so that the audit shows what the search disclosed.
            references=[registration.reference for registration in found],
        )
        if not found:
            form.add_error(
                None,
                _(
                    "No registration matches. A draft is not found here: open it from the "
                    "counter's home page of its store."
                ),
            )
        own = set(request.user.stores.values_list("pk", flat=True))
        rows = [
            {
                "registration": registration,
                "own_store": registration.store_id in own,
                "masked_msisdn": mask_mobile_number(registration.msisdn),
                "actions": [
                    SERVICE_ACTION_LABELS[action]
                    for action in selectors.registration_service_actions(
                        registration=registration, change_pending=registration.change_pending
                    )
                ],
                "change_pending": registration.change_pending,
            }
            for registration in found
        ]
        context = {
            "form": form,
            "rows": rows,
            "more": more,
            "limit": selectors.FIND_LIMIT,
            "purposes": services.ServicePurpose.choices,
        }
        return render(request, self.template_name, context)


class ServiceView(CounterMixin, View):
    """A registration of any store opened for service: asks once why (a code), then shows what
    the service needs, masked; each showing is an audit event with that purpose."""

    template_name = "registrations/counter/service.html"

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        form = ServicePurposeForm(request.GET or None)
        if not form.is_valid():
            # Nothing of the record but its reference is shown until the purpose is given.
            registration = _service_registration(request, reference, shows=())
            services.registration_view_record(
                actor=request.user,
                registration=registration,
                origin=Origin.of(request),
                page="service_purpose",
            )
            return render(
                request,
                "registrations/counter/service_purpose.html",
                {"form": form, "registration": registration},
            )
        purpose = form.cleaned_data["purpose"]
        registration = _service_registration(request, reference, shows=SHOWS_NAMES)
        services.registration_view_record(
            actor=request.user,
            registration=registration,
            origin=Origin.of(request),
            page="service",
            details={"purpose": purpose},
        )
        change = selectors.registration_change_pending(registration=registration)
        possible = selectors.registration_service_actions(
            registration=registration, change_pending=change is not None
        )
        actions = [
            {
                "name": action,
                "label": SERVICE_ACTION_LABELS[action],
                "url": f"{reverse(f'counter-{action}', args=[reference])}?purpose={purpose}",
            }
            for action in PURPOSE_ACTIONS[purpose]
            if action in possible or action in ALWAYS_OPEN_ACTIONS
        ]
        customer = registration.customer
        context = {
            "registration": registration,
            "purpose": purpose,
            "purpose_label": services.ServicePurpose(purpose).label,
            "own_store": _is_own_store(request, registration),
            "masked_name_en": mask_name(customer.name_en) if customer else "",
            "masked_name_zh": mask_name(customer.name_zh) if customer else "",
            "masked_document": mask_person_document(customer),
            "masked_msisdn": mask_mobile_number(registration.msisdn),
            "change": change,
            "actions": actions,
            "wanted": PURPOSE_ACTIONS[purpose],
        }
        return render(request, self.template_name, context)


class _ChangeRequestView(CounterMixin, View):
    """A service asked for at the counter of any store: the record's store decides."""

    template_name = ""
    form_class: type[forms.Form] = forms.Form
    success_message = ""
    audit_page = ""
    # The action this page is (registrations.selectors.SERVICE_ACTIONS) and its purpose.
    action = ""
    purpose = services.ServicePurpose.UPDATE
    refused_message = gettext_lazy("Only an approved registration can be updated or terminated.")

    def registration(self, request: HttpRequest, reference: str) -> Registration | None:
        registration = _service_registration(request, reference)
        # A change waiting for a decision is the service's to refuse, next to the form.
        if self.action not in selectors.registration_service_actions(
            registration=registration, change_pending=False
        ):
            messages.info(request, self.refused_message)
            return None
        return registration

    def form_kwargs(self, registration: Registration) -> dict:
        return {"user": self.request.user}

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if registration is None:
            return self.refused(request, reference)
        services.registration_view_record(
            actor=request.user,
            registration=registration,
            origin=Origin.of(request),
            page=self.audit_page,
        )
        return self.render(registration, self.form_class(**self.form_kwargs(registration)))

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if registration is None:
            return self.refused(request, reference)
        form = self.form_class(request.POST, request.FILES, **self.form_kwargs(registration))
        if form.is_valid():
            try:
                self.save(registration, form, Origin.of(request))
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, self.success_text(registration))
                return redirect(_done_url(request, registration, self.purpose))
        return self.render(registration, form)

    def success_text(self, registration: Registration) -> str:
        """What was recorded, and who decides: the supervisors of the registration's store."""
        return "{} {}".format(
            self.success_message,
            _("Supervisors of %(store)s, the registration's store, decide.")
            % {"store": f"{registration.store.code} {registration.store.display_name}"},
        )

    def refused(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = _service_registration(request, reference)
        return redirect(_done_url(request, registration, self.purpose))

    def save(self, registration: Registration, form: forms.Form, origin: Origin) -> None:
        raise NotImplementedError

    def render(self, registration: Registration, form: forms.Form) -> HttpResponse:
        return render(
            self.request,
            self.template_name,
            {
                "registration": registration,
                "form": form,
                "masked_document": mask_person_document(registration.customer),
                "masked_msisdn": mask_mobile_number(registration.msisdn),
                "own_store": _is_own_store(self.request, registration),
                "back_url": _done_url(self.request, registration, self.purpose),
            },
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class UpdateRequestView(_ChangeRequestView):
    template_name = "registrations/counter/update.html"
    form_class = UpdateForm
    audit_page = "update"
    action = "update"
    purpose = services.ServicePurpose.UPDATE
    success_message = gettext_lazy("Update of information recorded for review.")

    def save(self, registration, form, origin):
        services.registration_request_change(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            change=form.change(),
            store=form.serving_store(),
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class TerminationRequestView(_ChangeRequestView):
    template_name = "registrations/counter/terminate.html"
    form_class = TerminationForm
    audit_page = "terminate"
    action = "terminate"
    purpose = services.ServicePurpose.TERMINATION
    success_message = gettext_lazy("Termination recorded for review.")

    def save(self, registration, form, origin):
        services.registration_request_termination(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            reason=form.cleaned_data["termination_reason"],
            cause=form.cleaned_data["termination_cause"],
            store=form.serving_store(),
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class LossReportView(_ChangeRequestView):
    """A lost, stolen or damaged SIM: after the identity check the registration is suspended
    at once, whatever store the customer walked into."""

    template_name = "registrations/counter/loss.html"
    form_class = LossReportForm
    audit_page = "loss"
    action = "loss"
    purpose = services.ServicePurpose.SIM_LOSS
    refused_message = gettext_lazy("Only an approved registration can be suspended for a lost SIM.")
    success_message = gettext_lazy(
        "The SIM is reported and the registration is suspended. A replacement SIM can be asked "
        "for now or later, at any store."
    )

    def save(self, registration, form, origin):
        services.registration_report_sim_loss(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            store=form.serving_store(),
            identity=form.identity(),
            loss=form.cleaned_data["sim_loss"],
        )

    def success_text(self, registration: Registration) -> str:
        # Suspended now: nothing waits for a supervisor.
        return str(self.success_message)


@method_decorator(sensitive_post_parameters(), name="dispatch")
class ReplacementRequestView(_ChangeRequestView):
    """A new SIM on the same number, after the identity check; an approved registration's SIM
    is reported lost in the same step. A supervisor of the record's store approves it."""

    template_name = "registrations/counter/replace.html"
    form_class = ReplacementForm
    audit_page = "replace"
    action = "replace"
    purpose = services.ServicePurpose.SIM_LOSS
    refused_message = gettext_lazy(
        "Only an approved or suspended registration can get a replacement SIM."
    )
    success_message = gettext_lazy("Replacement SIM recorded for review.")

    def form_kwargs(self, registration: Registration) -> dict:
        return {
            "user": self.request.user,
            "suspended": registration.status == Registration.Status.SUSPENDED,
        }

    def save(self, registration, form, origin):
        cleaned = form.cleaned_data
        services.registration_request_replacement(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            store=form.serving_store(),
            identity=form.identity(),
            sim_kind=cleaned["new_sim_kind"],
            iccid=cleaned["new_iccid"],
            eid=cleaned["new_eid"],
            loss=cleaned.get("sim_loss", ""),
        )


# The subscriber's own report -------------------------------------------------------------------


def _access_rows(
    events: list[AuditEvent],
    staff: dict[int, tuple[list[str], set[str]]],
    labels: dict[str, dict],
) -> list[dict]:
    """The accesses to a record as the customer reads them: when, what, who (a role and a store,
    never a person's name) and why (a reason code's or a service purpose's label).

    The store is where the access was made: the serving store an event names, else the record's
    store when the person works there or supervises it, else the stores the person works at (a
    counter of another store that viewed the record)."""
    rows = []
    for event in events:
        store = event.details.get("at_store", "")
        if event.actor_id is None:
            role = _("The operator's system")
            store = store or event.store_code
        else:
            held, codes = staff.get(event.actor_id) or ([], set())
            role = " / ".join(role_label(name) for name in held) or _("Staff member")
            if not store:
                store = (
                    event.store_code
                    if event.store_code in codes or not codes
                    else " / ".join(sorted(codes))
                )
        what = labels["action"].get(event.action, event.action)
        if event.fields:
            what = "{}: {}".format(
                what, ", ".join(field_label(name, action=event.action) for name in event.fields)
            )
        purpose = event.details.get("purpose", "")
        why = labels["sim_loss"].get(event.reason) or reason_label(
            event.reason, action=event.action
        )
        rows.append(
            {
                "at": event.at,
                "what": what,
                "who": f"{role}, {store}" if store else role,
                "why": why or labels["purpose"].get(purpose, ""),
            }
        )
    return rows


def _subject_report_context(registrations: list[Registration], store) -> dict:
    """Everything the report prints, read after the report's own events were written."""
    more = len(registrations) > selectors.SUBJECT_REPORT_REGISTRATIONS
    registrations = registrations[: selectors.SUBJECT_REPORT_REGISTRATIONS]
    changes: dict[int, list[dict]] = {registration.pk: [] for registration in registrations}
    for change in selectors.subject_report_changes(registrations=registrations):
        document_type = change.new_document_type
        changes[change.registration_id].append(
            {
                "change": change,
                "fields": [field_label(name, change=True) for name in change.changed_fields],
                "new_document": format_document_number(document_type, change.new_document_number)
                if document_type and change.new_document_number
                else "",
            }
        )
    limit = selectors.SUBJECT_REPORT_EVENTS
    events = {
        registration.pk: selectors.subject_report_events(
            reference=registration.reference, limit=limit
        )
        for registration in registrations
    }
    staff = selectors.user_roles_and_stores(
        user_ids={e.actor_id for listed in events.values() for e in listed if e.actor_id}
    )
    labels = {
        "action": choice_labels(AuditEvent.Action),
        "purpose": choice_labels(services.ServicePurpose),
        "sim_loss": choice_labels(Registration.SimLoss),
    }
    entries = [
        {
            "registration": registration,
            "person": registration.customer,
            "document": format_document_number(
                registration.customer.document_type, registration.customer.document_number
            ),
            "changes": changes[registration.pk],
            "accesses": _access_rows(events[registration.pk][:limit], staff, labels),
            "more_accesses": len(events[registration.pk]) > limit,
        }
        for registration in registrations
    ]
    return {
        "entries": entries,
        "more": more,
        "registration_limit": selectors.SUBJECT_REPORT_REGISTRATIONS,
        "event_limit": limit,
        "store": store,
        "produced_at": timezone.now(),
    }


@method_decorator(sensitive_post_parameters(), name="dispatch")
class SubjectReportView(CounterMixin, View):
    """The customer's own report of their data, at the counter of any store: the identity check
    is posted, and the report is that POST's response, never stored nor cached, with no value in
    the URL or the session."""

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = _service_registration(request, reference, shows=())
        services.registration_view_record(
            actor=request.user,
            registration=registration,
            origin=Origin.of(request),
            page="subject_report",
            details={"purpose": services.ServicePurpose.SUBJECT_REPORT},
        )
        return self.render_check(registration, IdentityCheckForm(user=request.user))

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = _service_registration(request, reference, shows=())
        form = IdentityCheckForm(request.POST, user=request.user)
        if form.is_valid():
            store = form.serving_store()
            try:
                found = services.subject_report_produce(
                    registration=registration,
                    actor=request.user,
                    origin=Origin.of(request),
                    store=store,
                    identity=form.identity(),
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                response = render(
                    request,
                    "registrations/counter/subject_report.html",
                    {"registration": registration, **_subject_report_context(found, store)},
                )
                add_never_cache_headers(response)
                return response
        return self.render_check(registration, form)

    def render_check(self, registration: Registration, form: forms.Form) -> HttpResponse:
        response = render(
            self.request,
            "registrations/counter/subject_report_check.html",
            {
                "registration": registration,
                "form": form,
                "back_url": _service_url(registration, services.ServicePurpose.SUBJECT_REPORT),
            },
        )
        add_never_cache_headers(response)
        return response


@require_http_methods(["GET", "POST"])
def discard_draft(request: HttpRequest, reference: str) -> HttpResponse:
    """GET: a page asking to confirm. POST with the confirmation: the draft is deleted."""
    if not roles.allows(request.user, roles.RECORD):
        raise PermissionDenied
    registration = _counter_registration(request, reference)
    if registration.status != Registration.Status.DRAFT:
        messages.error(request, _("Only a draft can be discarded."))
        return redirect("counter-record", registration.reference)
    # Deleting cannot be undone: a post from anywhere but the confirmation page only asks.
    if request.method == "GET" or request.POST.get("confirm") != "discard":
        services.registration_view_record(
            actor=request.user,
            registration=registration,
            origin=Origin.of(request),
            page="discard",
        )
        return render(
            request,
            "registrations/counter/discard.html",
            {"registration": registration, "keep_url": _resume_url(registration)},
        )
    try:
        services.registration_discard_draft(
            registration=registration, actor=request.user, origin=Origin.of(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("counter-record", registration.reference)
    messages.success(request, _("Draft discarded."))
    return redirect("home")


# The counter's lists ------------------------------------------------------------------------------

COUNTER_LIST_PAGE_SIZE = 25
COUNTER_LIST_LABELS = {
    "drafts": gettext_lazy("Drafts"),
    "returned": gettext_lazy("Returned for correction"),
    "pending": gettext_lazy("Pending review"),
    "decided": gettext_lazy("Decided"),
}
# What the "when" column of each list shows: the time the list is ordered by.
COUNTER_LIST_WHEN = {
    "drafts": gettext_lazy("Started"),
    "returned": gettext_lazy("Submitted"),
    "pending": gettext_lazy("Submitted"),
    "decided": gettext_lazy("Decided"),
}


def _page_number(text: str | None) -> int:
    """The page number carried by the paging links (the keyset cursor finds the rows)."""
    return int(text) if text and text.isdigit() and len(text) < 7 else 1


@method_decorator(sensitive_post_parameters(), name="dispatch")
class RecordListView(CounterMixin, View):
    """The records of one of the user's stores, one list at a time (drafts, returned for
    correction, pending review, decided), newest first, page by page; and a search by reference
    over all of the user's stores. Each page shown is one audit event: the customers' names are
    decrypted to be shown masked."""

    template_name = "registrations/counter/records.html"

    def _context(self, request: HttpRequest, stores: list, store, list_name: str) -> dict:
        counts = selectors.counter_list_counts(
            selectors.store_status_counts(stores=[store]) if store is not None else {}
        )
        return {
            "stores": stores,
            "store": store,
            "list_name": list_name,
            "tabs": [
                {
                    "name": name,
                    "label": label,
                    "count": counts[name],
                    "url": "?" + urlencode({"list": name, "store": store.code if store else ""}),
                }
                for name, label in COUNTER_LIST_LABELS.items()
            ],
            "count": counts[list_name],
            "when_label": COUNTER_LIST_WHEN[list_name],
            "search_form": RecordSearchForm(),
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        stores = list(request.user.stores.all())
        store = next(
            (s for s in stores if s.code == request.GET.get("store")),
            stores[0] if stores else None,
        )
        list_name = request.GET.get("list", "")
        if list_name not in selectors.COUNTER_LISTS:
            list_name = "drafts"
        page = selectors.counter_list_page(
            stores=[store] if store is not None else [],
            list_name=list_name,
            older_than=request.GET.get("older"),
            newer_than=request.GET.get("newer"),
            size=COUNTER_LIST_PAGE_SIZE,
        )
        number = _page_number(request.GET.get("page")) if page["newer"] else 1
        if page["rows"]:
            services.registration_view_counter_list(
                actor=request.user,
                origin=Origin.of(request),
                view="counter_records",
                list_name=list_name,
                page=number,
                references=[registration.reference for registration in page["rows"]],
                store=store,
            )
        context = self._context(request, stores, store, list_name)
        base = {"list": list_name, "store": store.code if store is not None else ""}
        context |= {
            "rows": registration_rows(page["rows"], list_name=list_name),
            "number": number,
            "pages": max(number, -(-context["count"] // COUNTER_LIST_PAGE_SIZE)),
            "older_url": "?" + urlencode({**base, "older": page["older"], "page": number + 1})
            if page["older"]
            else "",
            "newer_url": "?" + urlencode({**base, "newer": page["newer"], "page": number - 1})
            if page["newer"]
            else "",
        }
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest) -> HttpResponse:
        stores = list(request.user.stores.all())
        form = RecordSearchForm(request.POST)
        list_name = request.POST.get("list", "")
        if list_name not in selectors.COUNTER_LISTS:
            list_name = "drafts"
        store = next(
            (s for s in stores if s.code == request.POST.get("store")),
            stores[0] if stores else None,
        )
        context = self._context(request, stores, store, list_name)
        context["search_form"] = form
        if not form.is_valid():
            return render(request, self.template_name, context, status=400)
        found = selectors.counter_list_search(
            stores=stores, reference=form.cleaned_data["reference"]
        )
        services.registration_view_search(
            actor=request.user,
            origin=Origin.of(request),
            by="reference",
            references=[registration.reference for registration in found],
        )
        context |= {"searched": True, "rows": registration_rows(found), "when_label": _("When")}
        return render(request, self.template_name, context)
