"""The counter's pages: a draft step by step (materials, channel, identity), the record page
(step 4) and its receipt, finding an approved registration, and asking for an update or a
termination.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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
    FindForm,
    IdentityForm,
    MaterialsForm,
    NewRegistrationForm,
    StepForm,
    TerminationForm,
    UpdateForm,
    add_service_errors,
)
from registrations.labels import field_label
from registrations.masking import mask_person_document
from registrations.models import (
    Person,
    ReasonCode,
    Registration,
)
from registrations.policy import current_policy
from registrations.validators import format_document_number
from registrations.views.common import RoleRequiredMixin

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

    def save(self, registration, form, origin, *, complete_step):
        services.registration_save_identity(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            identity=form.identity(),
            complete_step=complete_step,
        )


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
            .only(
                "kind",
                "status",
                "changed_fields",
                "requested_at",
                "registration_id",
                "requested_by__username",
            )
            .order_by("-pk")
        )
        for change in changes:
            change.field_labels = [field_label(name, change=True) for name in change.changed_fields]
        can_change = selectors.registration_change_allowed(
            registration=registration, changes=changes
        )
        approved = registration.status == Registration.Status.APPROVED
        is_draft = registration.status == Registration.Status.DRAFT
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
            "can_change": can_change,
            "change_waiting": approved and not can_change,
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


@method_decorator(sensitive_post_parameters(), name="dispatch")
class FindView(CounterMixin, View):
    """Find an approved registration by mobile number or document; POST only, no number in a URL."""

    template_name = "registrations/counter/find.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, {"form": FindForm()})

    def post(self, request: HttpRequest) -> HttpResponse:
        form = FindForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, {"form": form})
        data = form.cleaned_data
        by = data["by"]
        found = selectors.registration_find_at_counter(
            user=request.user,
            msisdn=data["msisdn"] if by == "msisdn" else "",
            document_type=data["document_type"] if by == "document" else "",
            document_number=data["document_number"] if by == "document" else "",
        )
        services.registration_view_search(
            actor=request.user,
            origin=Origin.of(request),
            by=by,
            # Which records were listed, so that the audit shows what the search disclosed.
            references=[registration.reference for registration in found],
        )
        if len(found) == 1:
            return redirect("counter-record", found[0].reference)
        if not found:
            form.add_error(None, _("No approved registration of your store matches."))
        return render(request, self.template_name, {"form": form, "found": found})


class _ChangeRequestView(CounterMixin, View):
    template_name = ""
    form_class: type[forms.Form] = forms.Form
    success_message = ""
    audit_page = ""

    def registration(self, request: HttpRequest, reference: str) -> Registration | None:
        registration = _counter_registration(request, reference, shows=SHOWS_DOCUMENT)
        if registration.status != Registration.Status.APPROVED:
            return None
        return registration

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if registration is None:
            messages.info(request, _("Only an approved registration can be updated or terminated."))
            return redirect("counter-record", reference)
        services.registration_view_record(
            actor=request.user,
            registration=registration,
            origin=Origin.of(request),
            page=self.audit_page,
        )
        return self.render(registration, self.form_class())

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = self.registration(request, reference)
        if registration is None:
            messages.info(request, _("Only an approved registration can be updated or terminated."))
            return redirect("counter-record", reference)
        form = self.form_class(request.POST, request.FILES)
        if form.is_valid():
            try:
                self.save(registration, form, Origin.of(request))
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, self.success_message)
                return redirect("counter-record", registration.reference)
        return self.render(registration, form)

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
            },
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class UpdateRequestView(_ChangeRequestView):
    template_name = "registrations/counter/update.html"
    form_class = UpdateForm
    audit_page = "update"
    success_message = gettext_lazy("Update of information recorded for review.")

    def save(self, registration, form, origin):
        services.registration_request_change(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            change=form.change(),
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class TerminationRequestView(_ChangeRequestView):
    template_name = "registrations/counter/terminate.html"
    form_class = TerminationForm
    audit_page = "terminate"
    success_message = gettext_lazy("Termination recorded for review.")

    def save(self, registration, form, origin):
        services.registration_request_termination(
            registration=registration,
            actor=self.request.user,
            origin=origin,
            reason=form.cleaned_data["termination_reason"],
        )


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
